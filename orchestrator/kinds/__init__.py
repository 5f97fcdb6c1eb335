"""The registry of resource kinds a plan may use: one module per API family, each with a
`KINDS` list."""

from __future__ import annotations

import functools
import importlib

from orchestrator.kinds.base import Kind

# Imported on first use, so that `provision --help` loads no kind module.
MODULES = (
    "compute", "apigee", "apigee_proxy", "servicenetworking", "run", "iam", "dns", "vpn", "xpn",
    "privateca", "certificatemanager", "instance_groups",
)


@functools.cache
def registry() -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for name in MODULES:
        module = importlib.import_module(f"orchestrator.kinds.{name}")
        for kind in module.KINDS:
            kinds[kind.name] = kind
    return kinds


def get(name: str) -> Kind | None:
    return registry().get(name)


def names() -> list[str]:
    return sorted(registry())
