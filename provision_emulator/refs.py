"""Finding references in request bodies, without per-field tables.

Any string value that is the path or URL of a resource in a collection the emulator serves (and
that clients can create) is a reference: `https://www.googleapis.com/compute/v1/projects/p/global/
networks/n`, `//run.googleapis.com/projects/p/locations/l/services/s`, `projects/p/regions/r/
subnetworks/s`. Paths of collections the emulator does not serve (KMS keys, ...) are left alone.

Google takes a URL on any of its hosts for the API (www.googleapis.com, API.googleapis.com, the
mTLS API.mtls.googleapis.com) as the resource it names; a client pointed at the emulator (gcloud
with an api_endpoint_override) sends them on the emulator's own address, under `/API/`, which is
taken the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google_facts import discovery
from provision_emulator import catalog
from provision_emulator.catalog import VAR, Collection

_VERSION = r"v\d+\w*|beta|alpha"
# The emulator's own address, as a client pointed at it names its resources.
_LOOPBACK = r"(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?"
# A bare path's segments are resource names, ids or numbers (a service account's email too); a
# base64 fingerprint or etag (`b/mzd+E0Lxk=`) only looks like one.
_NAME_SEGMENTS = re.compile(r"^[A-Za-z0-9._~@-]+(?:/[A-Za-z0-9._~@-]+)+$")
# Fields Google never reads as a reference, whatever their text looks like.
_FREE_TEXT = frozenset({"description", "displayName", "labels", "annotations"})


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    variable: _Node | None = None
    collections: list[Collection] = field(default_factory=list)


@dataclass(frozen=True)
class Ref:
    api: str
    path: str
    collection: Collection


class References:
    def __init__(self, rules: Mapping[str, Any]) -> None:
        """rules: each API's ApiRules; its `made_alongside` collections are referenced though
        nothing creates them."""
        self._root = _Node()
        self._urls: list[tuple[re.Pattern[str], str]] = []
        for api, api_rules in rules.items():
            for coll in catalog.collections(api).values():
                if coll.creatable or coll.name in api_rules.made_alongside:
                    self._add(coll)
            self._urls.append((self._url_pattern(api), api))

    @staticmethod
    def _url_pattern(api: str) -> re.Pattern[str]:
        doc = discovery.document(api)
        base = re.sub(r"(^|/)(v\d+\w*)/?$", "", doc.get("servicePath", "").rstrip("/"))
        base = f"{re.escape(base)}/" if base else ""
        name = re.escape(api)
        return re.compile(
            rf"^(?:https?://(?:www|{name}|{name}\.mtls)\.googleapis\.com/{base}(?:{_VERSION})/"
            rf"|https?://{_LOOPBACK}/{name}/{base}(?:{_VERSION})/"
            rf"|//{name}\.googleapis\.com/)(.+)$"
        )

    def _add(self, coll: Collection) -> None:
        node = self._root
        for seg in coll.pattern:
            if seg == VAR:
                node.variable = node.variable or _Node()
                node = node.variable
            else:
                node = node.literal.setdefault(seg, _Node())
        node.collections.append(coll)

    def parse(self, value: str, prefer: str) -> list[Ref]:
        """The resources `value` may name, those of API `prefer` first; [] if it names none."""
        if "/" not in value or any(c.isspace() for c in value):
            return []
        for pattern, api in self._urls:
            found = pattern.match(value)
            if found:
                path = found.group(1).split("?", 1)[0]
                return [Ref(api, path, c) for c in self._match(path) if c.api == api]
        if not _NAME_SEGMENTS.match(value):
            return []
        refs = [Ref(c.api, value, c) for c in self._match(value)]
        return sorted(refs, key=lambda r: r.api != prefer)

    def _match(self, path: str) -> list[Collection]:
        segments = path.split("/")
        out: list[Collection] = []
        self._walk(self._root, segments, 0, out)
        return out

    def _walk(self, node: _Node, segs: list[str], i: int, out: list[Collection]) -> None:
        if i == len(segs):
            out.extend(node.collections)
            return
        if not segs[i]:
            return
        child = node.literal.get(segs[i])
        if child is not None:
            self._walk(child, segs, i + 1, out)
        if node.variable is not None:
            self._walk(node.variable, segs, i + 1, out)


def strings(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple, str]]:
    """Every string in a JSON value that may be a reference, with its field path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in _FREE_TEXT:
                yield from strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, (*path, i))


def replace_at(value: Any, path: tuple, new: Any) -> None:
    for part in path[:-1]:
        value = value[part]
    value[path[-1]] = new
