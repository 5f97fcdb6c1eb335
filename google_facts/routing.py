"""Request routing from the discovery documents.

A request path (below `/{api}/`) is matched segment by segment against every method's `flat_path`
(in which each parameter is one segment), so matching costs the depth of the path, not the number
of methods. The method's own `path` (where `{+name}` spans several segments) then yields the
parameter values. Media upload paths (`upload/storage/v1/b/{bucket}/o`) route to their method too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from google_facts.discovery import Method

_PARAM = re.compile(r"\{(\+?)([^}]+)\}")


@dataclass(frozen=True)
class _Route:
    method: Method
    upload: bool
    pattern: re.Pattern[str]  # the method's full path, one group per parameter
    names: tuple[str, ...]


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    variable: _Node | None = None
    # (custom verb or "", HTTP method) -> route
    leaves: dict[tuple[str, str], _Route] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    method: Method
    params: dict[str, str]  # path parameters, decoded
    segments: tuple[str, ...]  # the decoded path segments (but "%2F"), custom verb removed
    verb: str  # the custom verb (":wait" -> "wait"), or ""
    upload: bool = False  # the request came to the method's media upload path


def _split_verb(segment: str) -> tuple[str, str]:
    base, sep, verb = segment.rpartition(":")
    return (base, verb) if sep and base and verb else (segment, "")


def _compile(path: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    names: list[str] = []
    parts: list[str] = []
    pos = 0
    for param in _PARAM.finditer(path):
        parts.append(re.escape(path[pos : param.start()]))
        parts.append("(.+)" if param.group(1) else "([^/]+)")
        names.append(param.group(2))
        pos = param.end()
    parts.append(re.escape(path[pos:]))
    return re.compile("".join(parts)), tuple(names)


class Router:
    """Routes the paths of one API. `path` below is relative to `/{api}/`."""

    def __init__(self, methods: tuple[Method, ...]) -> None:
        self._root = _Node()
        for m in methods:
            self._add(m.flat_path, _Route(m, False, *_compile(m.path)))
            if m.media_upload_path:
                upload = m.media_upload_path
                self._add(upload, _Route(m, True, *_compile(upload)))

    def _add(self, flat_path: str, route: _Route) -> None:
        segments = flat_path.split("/")
        last, verb = _split_verb(segments[-1])
        node = self._root
        for seg in [*segments[:-1], last]:
            if _PARAM.fullmatch(seg):
                node.variable = node.variable or _Node()
                node = node.variable
            else:
                node = node.literal.setdefault(seg, _Node())
        node.leaves.setdefault((verb, route.method.http_method), route)

    def match(self, http_method: str, raw_path: str) -> Match | None:
        # Decoded, except that a slash inside a segment stays escaped: a storage object named
        # "a/b" is one segment of its resource path.
        segments = [unquote(s).replace("/", "%2F") for s in raw_path.split("/")]
        last_base, verb = _split_verb(segments[-1])
        tries = [(verb, [*segments[:-1], last_base])] if verb else []
        tries.append(("", segments))
        for try_verb, segs in tries:
            route = self._walk(self._root, segs, 0, try_verb, http_method)
            if route is not None:
                found = route.pattern.fullmatch(raw_path)
                params = (
                    {n: unquote(v) for n, v in zip(route.names, found.groups(), strict=True)}
                    if found
                    else {}
                )
                return Match(route.method, params, tuple(segs), try_verb, route.upload)
        return None

    def _walk(
        self, node: _Node, segs: list[str], i: int, verb: str, http_method: str
    ) -> _Route | None:
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
