"""The registry of resource kinds a plan may use."""

from __future__ import annotations

import functools

from orchestrator.kinds.base import Kind


@functools.cache
def registry() -> dict[str, Kind]:
    # Imported here so that `provision --help` loads no kind module.
    from orchestrator.kinds import compute

    kinds: dict[str, Kind] = {}
    for module in (compute,):
        for kind in module.KINDS:
            kinds[kind.name] = kind
    return kinds


def get(name: str) -> Kind | None:
    return registry().get(name)


def names() -> list[str]:
    return sorted(registry())
