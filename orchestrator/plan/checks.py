"""What a plan's shape cannot tell: kinds, scopes, names, properties against Google's discovery
schemas, and where references point.

Every check reads the raw (var-substituted) data defensively and skips fields whose shape was
already found wrong, so one bad field does not hide the problems of the others.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google_facts import discovery
from orchestrator import kinds
from orchestrator.kinds.base import RFC1035, Kind
from orchestrator.plan import refs
from orchestrator.plan.errors import Diagnostic, did_you_mean
from orchestrator.plan.schema_walk import field_names, output_error
from orchestrator.plan.source import Path, SourceMap
from orchestrator.plan.structure import ID_PATTERN, FieldNamer, describe

SCOPE_VALUE = re.compile(r"[a-z0-9]([a-z0-9.:_-]{0,98}[a-z0-9])?\Z")
_ID = re.compile(ID_PATTERN)
_RESERVED_IDS = frozenset({refs.VARS, refs.SECRETS})
# "." and ".." are whole-path segments; "/" and %XX change what the path names.
_PATH_CHANGING = re.compile(r"^\.{1,2}$|/|%[0-9A-Fa-f]{2}")

_NAME_HELP = {
    RFC1035: "1-63 lowercase letters, digits or hyphens, starting with a letter and not ending "
    "with a hyphen",
}


@functools.cache
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


@dataclass
class StepFacts:
    """What the checks learned about one step, for building the model."""

    kind: Kind | None = None
    scope: dict[str, str] = field(default_factory=dict)
    deps: set[str] = field(default_factory=set)


class Checker:
    def __init__(
        self,
        source: SourceMap,
        namer: FieldNamer,
        scope_fields: tuple[str, ...],
        ids: dict[str, int],
        defaults: dict[str, str],
        secrets: set[str],
        diagnostics: list[Diagnostic],
    ) -> None:
        self.source = source
        self.field = namer
        self.scope_fields = scope_fields  # the usual four and any others a kind declares
        self.ids = ids  # step id -> index of its first definition
        self.defaults = defaults
        self.secrets = secrets
        self.diagnostics = diagnostics
        self.kinds: dict[int, Kind] = {}
        self.resources: dict[str, int] = {}

    def error(self, path: Path, message: str, *, key: bool = False) -> None:
        pos = self.source.key(path) if key else self.source.value(path)
        self.diagnostics.append(Diagnostic.at(pos, self.field(path), message))

    def line_of(self, index: int) -> int:
        return self.source.value(("steps", index)).line

    # --- one step ---------------------------------------------------------------------------

    def step(self, index: int, raw: dict[str, Any], bad: set[str]) -> StepFacts:
        base: Path = ("steps", index)
        facts = StepFacts()
        name = raw.get("kind")
        if "kind" not in bad and isinstance(name, str):
            facts.kind = kinds.get(name)
            if facts.kind is None:
                self.error(
                    (*base, "kind"),
                    f"unknown kind '{name}'{did_you_mean(name, kinds.names(), n=3)}",
                )
            else:
                self.kinds[index] = facts.kind
        if facts.kind is not None:
            facts.scope = self._scope(base, raw, bad, facts.kind)
            if "name" not in bad:
                self._name(base, raw.get("name"), facts.kind)
            if "properties" not in bad and isinstance(raw.get("properties"), dict):
                self._properties(base, raw["properties"], facts.kind)
            if "properties" not in bad:
                self._path_properties(base, raw.get("properties"), facts.kind)
            self._unique(index, raw, facts)
        self._references(index, raw, bad, facts)
        return facts

    def _scope(self, base: Path, raw: dict[str, Any], bad: set[str], kind: Kind) -> dict[str, str]:
        scope: dict[str, str] = {}
        for name in self.scope_fields:
            if raw.get(name) is not None and name not in kind.scope and name not in bad:
                self.error(
                    (*base, name),
                    f"{kind.name} takes no {name} (its scope: {', '.join(kind.scope) or 'none'})",
                    key=True,
                )
        for name in kind.scope:
            value = raw.get(name)
            if name in bad:
                continue
            if value is None:
                value = self.defaults.get(name)
                if value is None:
                    self.error(
                        base, f"no {name}: {kind.name} needs one; set it on the step or in defaults"
                    )
                    continue
            elif not isinstance(value, str):
                # Scope fields a kind adds beyond the usual four escape the shape check.
                self.error((*base, name), f"expected a string, got {describe(value)}")
                continue
            elif not refs.has_refs(value) and not SCOPE_VALUE.match(value):
                self.error((*base, name), f"{describe(value)} is not a valid {name}")
            scope[name] = value
        return scope

    def _name(self, base: Path, name: Any, kind: Kind) -> None:
        if not isinstance(name, str) or refs.has_refs(name) or not kind.name_pattern:
            return
        if _PATH_CHANGING.search(name):
            # Whatever a kind's pattern allows ("." and "%" in an API proxy's), a name goes
            # into the request's path: it must not change which resource the path names.
            self.error(
                (*base, "name"),
                f"{describe(name)} would change the request path it goes into (a '.' or '..' "
                "segment, a '/', or a %-encoding): choose another name",
            )
            return
        if not _pattern(kind.name_pattern).match(name):
            rule = _NAME_HELP.get(kind.name_pattern, f"it must match {kind.name_pattern}")
            self.error(
                (*base, "name"),
                f"Google would reject {describe(name)} as a {kind.name} name: {rule}",
            )

    def _properties(self, base: Path, props: dict[str, Any], kind: Kind) -> None:
        at = (*base, "properties")
        if "name" in props:
            self.error(
                (*at, "name"),
                "the name goes at the step's top level (name:), not in properties",
                key=True,
            )
            props = {k: v for k, v in props.items() if k != "name"}
        issues = discovery.validate(kind.schema_document, kind.schema, props, output_only="reject")
        for issue in issues:
            path = (*at, *issue.path)
            if issue.reason == "outputOnly" and issue.path[0] in kind.settable:
                continue
            if issue.reason == "unknownField":
                names = field_names(kind.schema_document, kind.schema, issue.path[:-1])
                self.error(
                    path, "unknown field" + did_you_mean(str(issue.path[-1]), names), key=True
                )
            elif issue.reason == "outputOnly":
                self.error(path, "is output only: set by Google, not by the plan", key=True)
            elif not _holds_ref(props, issue.path):
                # A reference's value is known only at run time; its type is checked then.
                self.error(path, issue.message)

    def _path_properties(self, base: Path, props: Any, kind: Kind) -> None:
        """Properties the resource's path is made of (a DNS record's type) are required."""
        if props is not None and not isinstance(props, dict):
            return
        for name in _path_property_names(kind):
            if name not in (props or {}):
                self.error(
                    (*base, "properties") if props is not None else base,
                    f"missing {name} (required: it names the {kind.name}, {kind.path})",
                )

    def _unique(self, index: int, raw: dict[str, Any], facts: StepFacts) -> None:
        # Two steps on one resource would fight over it; only literal names can be compared.
        name = raw.get("name")
        if not isinstance(name, str) or refs.has_refs(name) or facts.kind is None:
            return
        if len(facts.scope) != len(facts.kind.scope):
            return
        if any(refs.has_refs(v) for v in facts.scope.values()):
            return
        try:
            props = raw.get("properties")
            path = facts.kind.resource_path(
                name, facts.scope, props if isinstance(props, dict) else None
            )
        except (KeyError, IndexError, ValueError):
            return  # a path property missing: _path_properties names it
        key = f"{facts.kind.name} {path}"
        if key in self.resources:
            other = self.resources[key]
            self.error(
                ("steps", index, "name"),
                f"step '{self.field.step_ids.get(other)}' (line {self.line_of(other)}) already "
                f"declares this {facts.kind.name}",
            )
        else:
            self.resources[key] = index

    # --- references -------------------------------------------------------------------------

    def _references(self, index: int, raw: dict[str, Any], bad: set[str], facts: StepFacts) -> None:
        base: Path = ("steps", index)
        for name in ("name", *self.scope_fields, "properties"):
            if name in bad or name not in raw:
                continue
            for path, text in _strings(raw[name], (*base, name)):
                try:
                    found = [p for p in refs.parse(text) if isinstance(p, refs.Ref)]
                except refs.RefSyntaxError:
                    continue  # reported when vars were substituted
                for ref in found:
                    self._reference(index, path, ref, facts)
        depends = raw.get("depends_on")
        if "depends_on" not in bad and isinstance(depends, list):
            for i, target in enumerate(depends):
                if isinstance(target, str) and self._target(
                    index, (*base, "depends_on", i), target, "depends on"
                ):
                    facts.deps.add(target)

    def _reference(self, index: int, path: Path, ref: refs.Ref, facts: StepFacts) -> None:
        if ref.is_secret:
            self._secret(path, ref, facts.kind)
        elif ref.step is not None and self._target(index, path, ref.step, "refers to"):
            facts.deps.add(ref.step)
            target_kind = self.kinds.get(self.ids[ref.step])
            problem = output_error(target_kind, ref.path) if target_kind else None
            if problem:
                self.error(path, f"{ref.text}: {problem}")

    def _target(self, index: int, path: Path, target: str, verb: str) -> bool:
        """Whether `target` is a step above this one; reports why not."""
        where = self.ids.get(target)
        if where is None and target == "each":
            return False  # ${each...} outside for_each: repeat.py said so
        if where is None:
            hint = did_you_mean(target, self.ids)
            if verb == "refers to" and not hint:
                hint = " (write $${ for a literal ${)"
            self.error(path, f"{verb} step '{target}', which does not exist{hint}")
            return False
        if where == index:
            self.error(path, f"{verb} its own step")
            return False
        if where > index:
            self.error(
                path,
                f"{verb} step '{target}', which comes later (line {self.line_of(where)}); "
                "a step may reference only steps above it",
            )
            return False
        return True

    def _secret(self, path: Path, ref: refs.Ref, kind: Kind | None) -> None:
        name = ref.target
        if name not in self.secrets:
            self.error(path, f"no secret '{name}' in secrets{did_you_mean(name, self.secrets)}")
            return
        if kind is None:
            return
        field_path = _field_path(path)
        if any(field_path == f or field_path.startswith(f + ".") for f in kind.secret_fields):
            return
        where = (
            f"{kind.name} takes secrets only in: {', '.join(sorted(kind.secret_fields))}"
            if kind.secret_fields
            else f"{kind.name} has no secret fields"
        )
        self.error(
            path,
            f"secret '{name}' cannot go here ({where}); its value would be stored in the ledger",
        )


def check_ids(
    raw_steps: list[Any], source: SourceMap, diagnostics: list[Diagnostic]
) -> tuple[dict[str, int], dict[int, str]]:
    """Step ids: first definition of each, and the id of each step that has a usable one."""
    ids: dict[str, int] = {}
    names: dict[int, str] = {}
    for index, raw in enumerate(raw_steps):
        step_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(step_id, str) or not _ID.match(step_id):
            continue  # the shape check names it
        names[index] = step_id
        where = source.value(("steps", index, "id"))
        if step_id in _RESERVED_IDS:
            diagnostics.append(
                Diagnostic.at(
                    where,
                    f"step '{step_id}' id",
                    f"'{step_id}' is reserved for ${{{step_id}.NAME}} references",
                )
            )
        elif step_id in ids:
            first = source.value(("steps", ids[step_id], "id")).line
            diagnostics.append(
                Diagnostic.at(
                    where, f"step '{step_id}' id", f"duplicate step id (first at line {first})"
                )
            )
        else:
            ids[step_id] = index
    return ids, names


def _path_property_names(kind: Kind) -> list[str]:
    fields = [f for _, f, _, _ in string.Formatter().parse(kind.path) if f]
    return [f for f in dict.fromkeys(fields) if f != "name" and f not in kind.scope]


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def _holds_ref(props: Any, path: tuple[str | int, ...]) -> bool:
    value = props
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(value, str) and refs.has_refs(value)


def _field_path(path: Path) -> str:
    """The property path of a step path, list indices left out: "tls.privateKey"."""
    return ".".join(str(p) for p in path[3:] if isinstance(p, str))
