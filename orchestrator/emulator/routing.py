"""Request routing from the discovery documents.

A request path (below `/{api}/`) is matched segment by segment against every method's `flat_path`
(in which each parameter is one segment), so matching costs the depth of the path, not the number
of methods. The method's own `path` (where `{+name}` spans several segments) then yields the
parameter values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from orchestrator.discovery import Method

_PARAM = re.compile(r"\{(\+?)([^}]+)\}")


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    variable: _Node | None = None
    # (custom verb or "", HTTP method) -> method
    leaves: dict[tuple[str, str], Method] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    method: Method
    params: dict[str, str]  # path parameters, decoded
    segments: tuple[str, ...]  # the decoded path segments, custom verb removed
    verb: str  # the custom verb (":wait" -> "wait"), or ""


def _split_verb(segment: str) -> tuple[str, str]:
    base, sep, verb = segment.rpartition(":")
    return (base, verb) if sep and base and verb else (segment, "")


class Router:
    """Routes the paths of one API. `path` below is relative to `/{api}/`."""

    def __init__(self, methods: tuple[Method, ...]) -> None:
        self._root = _Node()
        self._patterns: dict[str, tuple[re.Pattern[str], list[str]]] = {}
        for m in methods:
            self._add(m)

    def _add(self, m: Method) -> None:
        segments = m.flat_path.split("/")
        last, verb = _split_verb(segments[-1])
        node = self._root
        for seg in [*segments[:-1], last]:
            if _PARAM.fullmatch(seg):
                node.variable = node.variable or _Node()
                node = node.variable
            else:
                node = node.literal.setdefault(seg, _Node())
        node.leaves.setdefault((verb, m.http_method), m)
        names: list[str] = []
        parts: list[str] = []
        pos = 0
        for param in _PARAM.finditer(m.path):
            parts.append(re.escape(m.path[pos : param.start()]))
            parts.append("(.+)" if param.group(1) else "([^/]+)")
            names.append(param.group(2))
            pos = param.end()
        parts.append(re.escape(m.path[pos:]))
        regex = "".join(parts)
        self._patterns[m.id] = (re.compile(regex), names)

    def match(self, http_method: str, raw_path: str) -> Match | None:
        raw_segments = raw_path.split("/")
        segments = [unquote(s) for s in raw_segments]
        last_base, verb = _split_verb(segments[-1])
        tries = [(verb, [*segments[:-1], last_base])] if verb else []
        tries.append(("", segments))
        for try_verb, segs in tries:
            method = self._walk(self._root, segs, 0, try_verb, http_method)
            if method is not None:
                return Match(method, self._params(method, raw_path), tuple(segs), try_verb)
        return None

    def _walk(
        self, node: _Node, segs: list[str], i: int, verb: str, http_method: str
    ) -> Method | None:
        if i == len(segs):
            return node.leaves.get((verb, http_method))
        child = node.literal.get(segs[i])
        if child is not None:
            found = self._walk(child, segs, i + 1, verb, http_method)
            if found is not None:
                return found
        if node.variable is not None and segs[i]:
            return self._walk(node.variable, segs, i + 1, verb, http_method)
        return None

    def _params(self, method: Method, raw_path: str) -> dict[str, str]:
        regex, names = self._patterns[method.id]
        found = regex.fullmatch(raw_path)
        if found is None:  # flat and full paths disagree only for exotic paths; keep none
            return {}
        return {name: unquote(value) for name, value in zip(names, found.groups(), strict=True)}
