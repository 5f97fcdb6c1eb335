"""Apigee flow conditions and message templates, as far as the orchestrator's bundles and
the probe's debug filters use them.

- Conditions (https://cloud.google.com/apigee/docs/api-platform/reference/conditions-reference):
  a flow variable compared with a quoted literal by `=`/`==`/`!=` or `MatchesPath` (`*` one
  path segment, `**` any number), joined by `and`/`or` (`and` binding first) and parentheses.
  Anything else raises ValueError, saying it is not evaluated.
- Templates (https://cloud.google.com/apigee/docs/api-platform/reference/message-template-intro):
  `{variable}` and `{replaceFirst(variable,"regex","replacement")}`; an unknown variable is
  the empty string.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|MatchesPath|==|!=|=|\band\b|\bor\b|'
                    r'[A-Za-z_][\w.\-]*)', re.IGNORECASE)


def evaluate(text: str, variables: dict[str, str]) -> bool:
    tokens = _tokens(text)
    value, rest = _or(tokens, variables)
    if rest:
        raise ValueError(f"condition {text!r}: not evaluated by the emulator")
    return value


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        found = _TOKEN.match(text, pos)
        if found is None:
            raise ValueError(f"condition {text!r}: not evaluated by the emulator")
        out.append(found.group(1))
        pos = found.end()
    return out


def _or(tokens: list[str], v: dict[str, str]) -> tuple[bool, list[str]]:
    return _joined(tokens, v, "or", _and)


def _and(tokens: list[str], v: dict[str, str]) -> tuple[bool, list[str]]:
    return _joined(tokens, v, "and", _term)


def _joined(tokens: list[str], v: dict[str, str], word: str,
            operand: Any) -> tuple[bool, list[str]]:
    """Operands joined by `word` ("and" binds before "or"), all evaluated."""
    value, tokens = operand(tokens, v)
    while tokens and tokens[0].lower() == word:
        right, tokens = operand(tokens[1:], v)
        value = (value or right) if word == "or" else (value and right)
    return value, tokens


def _term(tokens: list[str], v: dict[str, str]) -> tuple[bool, list[str]]:
    if tokens and tokens[0] == "(":
        value, rest = _or(tokens[1:], v)
        if not rest or rest[0] != ")":
            raise ValueError("unbalanced parentheses")
        return value, rest[1:]
    if len(tokens) < 3 or not tokens[2].startswith('"'):
        raise ValueError(f"condition {' '.join(tokens)!r}: not evaluated by the emulator")
    name, operator, literal = tokens[0].lower(), tokens[1], json.loads(tokens[2])
    actual = v.get(name, "")
    if operator.lower() == "matchespath":
        result = re.fullmatch(_path_pattern(literal), actual) is not None
    elif operator in ("=", "=="):
        result = actual == literal
    elif operator == "!=":
        result = actual != literal
    else:
        raise ValueError(f"operator {operator}: not evaluated by the emulator")
    return result, tokens[3:]


def _path_pattern(pattern: str) -> str:
    out = ""
    for piece in re.split(r"(\*\*|\*)", pattern):
        out += ".*" if piece == "**" else "[^/]*" if piece == "*" else re.escape(piece)
    return out


_FUNCTION = re.compile(r'^replaceFirst\(\s*([\w.\-]+)\s*,\s*"((?:[^"\\]|\\.)*)"\s*,\s*'
                       r'"((?:[^"\\]|\\.)*)"\s*\)$')


def template(text: str, variables: dict[str, str]) -> str:
    def substitute(found: re.Match[str]) -> str:
        inner = found.group(1)
        call = _FUNCTION.match(inner)
        if call is not None:
            source, regex, replacement = call.groups()
            return re.sub(regex, replacement, variables.get(source, ""), count=1)
        return variables.get(inner, "")

    return re.sub(r"\{([^{}]*(?:\([^()]*\))?)\}", substitute, text)
