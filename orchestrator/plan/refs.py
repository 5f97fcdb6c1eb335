"""References in plan strings: `${vars.x}`, `${secrets.x}`, `${<step-id>.<output path>}`.

`$${` stands for a literal `${`. Vars are substituted when the plan loads; secret and step
references stay in the model as text and are resolved by the engine at run time, through
`resolve(value, lookup)`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

VARS = "vars"
SECRETS = "secrets"
STEP = "step"

_OPEN = "${"
_ESCAPED = "$${"
# A step's id may end in the [KEY] of a step for_each generates: ${router[a].name}.
_BODY = re.compile(
    r"([A-Za-z][A-Za-z0-9_-]*(?:\[[A-Za-z0-9_.:-]+\])?)((?:\.[A-Za-z0-9_-]+)*)\Z")


@dataclass(frozen=True)
class Ref:
    """One `${...}`.

    scope: "vars", "secrets" or "step". target: the var's or secret's name, or the step's id.
    path: the step's output path, list indices as ints (empty for vars and secrets).
    """

    scope: str
    target: str
    path: tuple[str | int, ...]
    text: str

    @property
    def step(self) -> str | None:
        return self.target if self.scope == STEP else None

    @property
    def is_var(self) -> bool:
        return self.scope == VARS

    @property
    def is_secret(self) -> bool:
        return self.scope == SECRETS

    @property
    def output(self) -> str:
        """The output path as written: "vpnInterfaces.0.ipAddress"."""
        return ".".join(str(p) for p in self.path)


class RefSyntaxError(ValueError):
    pass


@functools.lru_cache(maxsize=8192)
def parse(text: str) -> tuple[str | Ref, ...]:
    """The text as literal parts (escapes undone) and references, in order."""
    if _OPEN not in text:
        return (text,)
    parts: list[str | Ref] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith(_ESCAPED, i):
            literal.append(_OPEN)
            i += 3
        elif text.startswith(_OPEN, i):
            end = text.find("}", i + 2)
            if end < 0:
                raise RefSyntaxError(
                    f"unclosed reference {_clip(text[i:])} (write $${{ for a literal ${{)"
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_ref(text[i : end + 1]))
            i = end + 1
        else:
            nxt = text.find("$", i + 1)
            nxt = len(text) if nxt < 0 else nxt
            literal.append(text[i:nxt])
            i = nxt
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _ref(text: str) -> Ref:
    m = _BODY.match(text[2:-1])
    if not m:
        raise RefSyntaxError(
            f"malformed reference {_clip(text)}: expected ${{vars.NAME}}, ${{secrets.NAME}} or "
            "${STEP.OUTPUT} (write $${ for a literal ${)"
        )
    root = m.group(1)
    path = tuple(int(p) if p.isdigit() else p for p in m.group(2).split(".")[1:])
    if root in (VARS, SECRETS):
        if len(path) != 1 or not isinstance(path[0], str):
            what = "var" if root == VARS else "secret"
            raise RefSyntaxError(f"{_clip(text)}: name one {what}, as in ${{{root}.NAME}}")
        return Ref(root, path[0], (), text)
    if not path:
        raise RefSyntaxError(
            f"{_clip(text)} names no output of step '{root}'; write ${{{root}.OUTPUT}}"
        )
    return Ref(STEP, root, path, text)


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def find_refs(value: Any) -> list[Ref]:
    """Every reference in a value (strings inside dicts and lists included), in order."""
    out: list[Ref] = []
    _find(value, out)
    return out


def _find(value: Any, out: list[Ref]) -> None:
    if isinstance(value, str):
        if _OPEN in value:
            out.extend(p for p in parse(value) if isinstance(p, Ref))
    elif isinstance(value, dict):
        for v in value.values():
            _find(v, out)
    elif isinstance(value, list):
        for v in value:
            _find(v, out)


def has_refs(text: str) -> bool:
    """Whether the text holds a reference, or something malformed that was meant as one."""
    if _OPEN not in text:
        return False
    try:
        return any(isinstance(p, Ref) for p in parse(text))
    except RefSyntaxError:
        return True


def resolve(value: Any, lookup: Callable[[Ref], Any]) -> Any:
    """The value with every reference replaced by lookup(ref) and escapes undone.

    A string that is exactly one reference becomes the looked-up value as it is (a list, an
    int...); references inside longer strings are written in as text (non-strings as JSON).
    """
    if isinstance(value, str):
        if _OPEN not in value:
            return value
        parts = parse(value)
        if len(parts) == 1 and isinstance(parts[0], Ref):
            return lookup(parts[0])
        return "".join(p if isinstance(p, str) else as_text(lookup(p)) for p in parts)
    if isinstance(value, dict):
        return {k: resolve(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, lookup) for v in value]
    return value


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def escape(value: Any) -> Any:
    """A literal value made safe to place in a template: its `${` can no longer be read as a
    reference."""
    if isinstance(value, str):
        return value.replace(_OPEN, _ESCAPED)
    if isinstance(value, dict):
        return {k: escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape(v) for v in value]
    return value


def substitute_vars(text: str, values: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """The template with its var references filled in from `values`, other references and
    escapes kept as written, and the names of vars it uses that `values` lacks.

    Raises RefSyntaxError for a malformed reference.
    """
    if _OPEN not in text:
        return text, []
    parts = parse(text)
    missing = [
        p.target for p in parts if isinstance(p, Ref) and p.is_var and p.target not in values
    ]
    if missing or not any(isinstance(p, Ref) and p.is_var for p in parts):
        return text, [str(m) for m in missing]
    if len(parts) == 1:
        return escape(values[parts[0].target]), []  # type: ignore[union-attr]
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(escape(p))
        elif p.is_var:
            out.append(escape(as_text(values[p.target])))
        else:
            out.append(p.text)
    return "".join(out), []
