"""The `filter` parameter of list methods, in the subset of the two syntaxes clients use for
look-ups: compute's (`name = "x"`, `name eq x.*`, `(a = 1) AND (b != 2)`) and AIP-160's
(`state:ENABLED`, `name="x"`). Anything else is refused rather than ignored, so a list never
silently returns more than Google would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from provision_emulator import errors

_CLAUSE = re.compile(r"^\(?\s*([A-Za-z_][\w.]*)\s*(!=|=|:|\beq\b|\bne\b)\s*(.+?)\s*\)?$")
_AND = re.compile(r"\s+AND\s+|\)\s+\(", re.IGNORECASE)

Predicate = Callable[[dict[str, Any]], bool]


def _field(body: dict[str, Any], dotted: str) -> Any:
    value: Any = body
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _clause(text: str) -> Predicate:
    found = _CLAUSE.match(text.strip())
    if found is None:
        raise errors.invalid(f"Invalid list filter expression '{text}'.")
    name, op, raw = found.groups()
    value = raw.strip('"')
    if op in ("eq", "ne"):  # compute's regular-expression comparison
        regex = re.compile(value)
        if op == "eq":
            return lambda b: regex.fullmatch(_text(_field(b, name))) is not None
        return lambda b: regex.fullmatch(_text(_field(b, name))) is None
    if op == "!=":
        return lambda b: _text(_field(b, name)) != value
    if op == ":":
        return lambda b: value == "*" or value in _text(_field(b, name))
    return lambda b: _text(_field(b, name)) == value


def parse(expression: str | None) -> Predicate:
    if not expression or not expression.strip():
        return lambda body: True
    clauses = [_clause(part) for part in _AND.split(expression.strip())]
    return lambda body: all(c(body) for c in clauses)
