"""The resource store: every resource of every API, keyed by (api, relative path).

Two indexes keep the generic semantics cheap: children by parent path (for `list`) and referrers by
target (so a delete can name what still uses the resource without scanning the store).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (api, relative path such as "projects/p/global/networks/n")


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0]


@dataclass
class Resource:
    api: str
    path: str
    collection: str  # the discovery resource chain: "subnetworks", "projects.locations.services"
    body: dict[str, Any]  # as the API returns it, enums by name
    created: float  # wall-clock time it came into being (reads may lag it: eventual consistency)
    refs: tuple[Key, ...] = field(default_factory=tuple)  # resources its body points at

    @property
    def key(self) -> Key:
        return (self.api, self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "body": self.body,
            "created": self.created,
            "refs": [list(r) for r in self.refs],
        }

    @classmethod
    def from_json(cls, api: str, path: str, data: dict[str, Any]) -> Resource:
        return cls(
            api=api,
            path=path,
            collection=data["collection"],
            body=data["body"],
            created=data["created"],
            refs=tuple((r[0], r[1]) for r in data.get("refs", ())),
        )


class Store:
    def __init__(self) -> None:
        self._items: dict[Key, Resource] = {}
        self._children: dict[Key, dict[str, None]] = {}  # (api, parent path) -> paths, in order
        self._collections: dict[tuple[str, str], dict[str, None]] = {}  # (api, collection) -> paths
        self._referrers: dict[Key, set[Key]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, api: str, path: str) -> Resource | None:
        return self._items.get((api, path))

    def put(self, res: Resource) -> None:
        old = self._items.get(res.key)
        if old is not None:
            self._unlink(old)
        self._items[res.key] = res
        self._children.setdefault((res.api, parent_of(res.path)), {})[res.path] = None
        self._collections.setdefault((res.api, res.collection), {})[res.path] = None
        for target in res.refs:
            self._referrers.setdefault(target, set()).add(res.key)

    def remove(self, api: str, path: str) -> Resource | None:
        res = self._items.pop((api, path), None)
        if res is not None:
            self._unlink(res)
            self._children.get((api, parent_of(path)), {}).pop(path, None)
            self._collections.get((api, res.collection), {}).pop(path, None)
        return res

    def _unlink(self, res: Resource) -> None:
        for target in res.refs:
            self._referrers.get(target, set()).discard(res.key)

    def children(self, api: str, parent: str) -> list[Resource]:
        return [self._items[(api, p)] for p in self._children.get((api, parent), {})]

    def in_collection(self, api: str, collection: str) -> list[Resource]:
        return [self._items[(api, p)] for p in self._collections.get((api, collection), {})]

    def referrers(self, api: str, path: str) -> list[Resource]:
        keys = sorted(self._referrers.get((api, path), ()))
        return [self._items[k] for k in keys if k in self._items and k != (api, path)]

    def __iter__(self) -> Iterator[Resource]:
        return iter(list(self._items.values()))

    def to_json(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for res in self._items.values():
            out.setdefault(res.api, {})[res.path] = res.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, dict[str, Any]]) -> Store:
        store = cls()
        for api, items in data.items():
            for path, item in items.items():
                store.put(Resource.from_json(api, path, item))
        return store
