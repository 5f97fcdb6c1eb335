"""Edits a user makes to a reference plan, derived from the plan itself.

For each plan: every var changed (names, projects, regions, ranges, numbers); every literal
property of every step changed (a mutable field, updated in place, and an immutable one, which
replaces), with a value of the field's type (its discovery schema's enum where it has one); a
step added (a copy of a step nothing depends on), that step removed, a step renamed with a
`moved:` entry (its references rewritten), and a step moved up the file. Values Google refuses
are part of the corpus too: the check then is that nothing is left half-done.
"""

from __future__ import annotations

import copy
import io
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from google_facts import discovery
from orchestrator import kinds

PLANS = Path(__file__).parents[2] / "plans"
_CIDR = re.compile(r"^\d+\.\d+\.\d+\.\d+/\d+$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_TEXT_FIELDS = {"description", "displayName"}


@dataclass(frozen=True)
class Edit:
    plan: str  # the reference plan's file name
    category: str  # var, mutable-field, immutable-field, add, remove, rename, reorder
    name: str  # what changed, for messages
    text: str  # the edited plan
    revert: str = ""  # the plan that undoes it, when not the reference plan as it is

    @property
    def id(self) -> str:
        return f"{self.plan}: {self.category} {self.name}"


def load(path: Path) -> dict[str, Any]:
    return YAML(typ="safe").load(path.read_text())


def dump(data: dict[str, Any]) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(data, out)
    return out.getvalue()


def edits(path: Path) -> list[Edit]:
    data = load(path)
    found: list[Edit] = []

    def add(category: str, name: str, edited: dict[str, Any], revert: str = "") -> None:
        found.append(Edit(path.name, category, name, dump(edited), revert))

    for var, value in (data.get("vars") or {}).items():
        new = _var_value(var, value)
        if new is not None:
            edited = copy.deepcopy(data)
            edited["vars"][var] = new
            add("var", f"{var}: {value} -> {new}", edited)

    for index, step in enumerate(data["steps"]):
        kind = kinds.get(step["kind"])
        props = kind and discovery.schema(kind.schema_document, kind.schema).get("properties", {})
        for field, value in (step.get("properties") or {}).items():
            new = _value(value, (props or {}).get(field, {}), kind.schema_document, field)
            if new is None:
                continue
            edited = copy.deepcopy(data)
            edited["steps"][index]["properties"][field] = new
            mutable = kind.mutable is not None and field in kind.mutable
            add("mutable-field" if mutable else "immutable-field",
                f"{step['id']}.{field}", edited)

    leaf = _leaf(data)
    if leaf is not None:
        step = data["steps"][leaf]
        extra = copy.deepcopy(step)
        extra["id"] = f"{step['id']}-copy"
        extra["name"] = _copy_name(step["name"])
        edited = copy.deepcopy(data)
        edited["steps"].append(extra)
        add("add", extra["id"], edited)
        edited = copy.deepcopy(data)
        del edited["steps"][leaf]
        add("remove", step["id"], edited)

    renamed = _renamed(data)
    if renamed is not None:
        name, edited = renamed
        old, new = edited["moved"][0]["from"], edited["moved"][0]["to"]
        add("rename", name, edited, dump({**data, "moved": [{"from": new, "to": old}]}))

    moved = _moved_up(data)
    if moved is not None:
        add("reorder", *moved)
    return found


def _var_value(var: str, value: Any) -> Any:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value + 1
    if not isinstance(value, str):
        return None
    if "region" in var:
        return "us-central1" if value != "us-central1" else "europe-west1"
    if _CIDR.match(value):
        return _shift(value)
    if "/" in value or ":" in value:  # an image, a URL
        return value + "-2"
    if "." in value:  # a domain
        return "v2." + value
    return value + "-2"  # a name, a project id


def _shift(cidr: str) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    step = max(net.num_addresses, 256) * 4
    return str(ipaddress.ip_network((int(net.network_address) + step, net.prefixlen)))


def _value(value: Any, prop: dict[str, Any], document: str, field: str) -> Any:
    """Another valid-looking value of the field's type, or None to leave it."""
    if _has_ref(value):
        return None
    doc = discovery.document(document)
    if "$ref" in prop:
        prop = doc["schemas"].get(prop["$ref"], {})
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        options = [e for e in prop.get("enum", ()) if e != value and "UNSPECIFIED" not in e]
        if options:
            return options[0]
        if _CIDR.match(value):
            return _shift(value)
        if _IP.match(value):
            return str(ipaddress.ip_address(value) + 4 * 256)
        if "," in value and all(_CIDR.match(p) for p in value.split(",")):
            return ",".join(_shift(p) for p in value.split(","))
        if field in _TEXT_FIELDS:
            return value + " (edited)"
        return value + "-2"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        extra = _value(value[0], prop.get("items", {}), document, field)
        return None if extra is None or extra in value else [*value, extra]
    if isinstance(value, dict) and value:
        props = prop.get("properties", {})
        for key, inner in value.items():
            new = _value(inner, props.get(key, {}), document, key)
            if new is not None:
                return {**value, key: new}
    return None


def _has_ref(value: Any) -> bool:
    return "${" in repr(value)


def _deps(step: dict[str, Any]) -> set[str]:
    found = set(re.findall(r"\$\{([A-Za-z][A-Za-z0-9_-]*)\.", repr(step)))
    return (found - {"vars", "secrets"}) | set(step.get("depends_on") or ())


def _leaf(data: dict[str, Any]) -> int | None:
    """The last step nothing depends on, that is not an enabled API."""
    needed = set().union(*(_deps(s) for s in data["steps"]))
    for index in reversed(range(len(data["steps"]))):
        step = data["steps"][index]
        if step["id"] not in needed and step["kind"] != "serviceusage.service":
            return index
    return None


def _copy_name(name: str) -> str:
    if name.endswith("."):  # a DNS name
        return "copy." + name
    return name + "-copy" if "${" not in name else name.replace("}", "}-copy", 1)


def _renamed(data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first step others depend on, renamed, its references rewritten, with `moved:`."""
    needed = set().union(*(_deps(s) for s in data["steps"]))
    step = next((s for s in data["steps"] if s["id"] in needed
                 and s["kind"] != "serviceusage.service"), None)
    if step is None:
        return None
    old, new = step["id"], step["id"] + "-renamed"
    edited = _rewrite(copy.deepcopy(data), old, new)
    edited["moved"] = [{"from": old, "to": new}]
    return f"{old} -> {new}", edited


def _rewrite(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace("${" + old + ".", "${" + new + ".")
    if isinstance(value, list):
        return [new if v == old else _rewrite(v, old, new) for v in value]
    if isinstance(value, dict):
        out = {k: _rewrite(v, old, new) for k, v in value.items()}
        if out.get("id") == old:
            out["id"] = new
        return out
    return value


def _moved_up(data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The last step, moved to just below the last step it depends on."""
    steps = data["steps"]
    last = steps[-1]
    deps = _deps(last)
    where = max((i for i, s in enumerate(steps) if s["id"] in deps), default=-1) + 1
    if where >= len(steps) - 1:
        return None
    edited = copy.deepcopy(data)
    edited["steps"].insert(where, edited["steps"].pop())
    return f"{last['id']} to position {where}", edited
