"""The validated plan: what the engine reads."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.plan.errors import Position
from orchestrator.plan.secrets import SecretRef
from orchestrator.plan.source import SourceMap

_PART = re.compile(r"[^.\[\]]+|\[(\d+)\]")


def field_path(text: str | Sequence[str | int]) -> tuple[str | int, ...]:
    """("properties", "allowed", 0, "ports") from "properties.allowed[0].ports" or
    "properties.allowed.0.ports"."""
    if not isinstance(text, str):
        return tuple(text)
    out: list[str | int] = []
    for m in _PART.finditer(text):
        part = m.group(1) or m.group(0)
        out.append(int(part) if part.isdigit() else part)
    return tuple(out)


@dataclass(frozen=True)
class Step:
    """One resource.

    scope: the kind's scope fields (project, region...), from the step or from defaults.
    properties, name and scope values are templates: they may still hold `${secrets.x}` and
        `${step.output}` references (and `$${` escapes); refs.resolve() gives the final values.
    depends_on: as written. deps: every step this one needs first (references and depends_on).
    timeout: seconds, or None for the kind's default.
    """

    id: str
    kind: str
    name: str
    scope: dict[str, str]
    properties: dict[str, Any]
    depends_on: tuple[str, ...]
    timeout: float | None
    deps: frozenset[str]
    pos: Position
    source: SourceMap = field(repr=False, compare=False)
    index: int = field(repr=False, compare=False)

    def position(self, path: str | Sequence[str | int] = "") -> Position:
        """Where a field of this step is written ("properties.network"); a field the file does
        not spell out gives the nearest one above it."""
        return self.source.key(("steps", self.index, *field_path(path)))


def _key(step_id: str) -> str:
    return step_id.partition("[")[2]


@dataclass(frozen=True)
class Plan:
    """A plan file, validated. Holds references to secrets, never their values."""

    path: Path
    name: str
    vars: dict[str, Any]
    defaults: dict[str, str]
    secrets: dict[str, SecretRef]
    endpoints: dict[str, str]
    settings: dict[str, Any]
    steps: list[Step]
    source: SourceMap = field(repr=False, compare=False)
    moved: tuple[tuple[str, str], ...] = ()  # (from, to): renamed steps

    @functools.cached_property
    def _by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def step(self, step_id: str) -> Step:
        """The step with this id; KeyError if there is none."""
        return self._by_id[step_id]

    @functools.cached_property
    def start_order(self) -> dict[str, int]:
        """Each step's rank among steps ready to start at once: the plan's order, except that
        consecutive repeated steps over the same keys take turns by key (tunnel-a[k],
        tunnel-b[k], interface-a[k]... before tunnel-a[k2]), so that steps that wait for each
        other, such as the two ends of a VPN tunnel, start together rather than one template
        filling every place while the other waits."""
        order: list[str] = []
        blocks: list[tuple[str, list[str]]] = []  # consecutive generated steps, by template

        def flush() -> None:
            while blocks:
                keys = [_key(i) for i in blocks[0][1]]
                group = [blocks.pop(0)]
                while blocks and [_key(i) for i in blocks[0][1]] == keys:
                    group.append(blocks.pop(0))
                order.extend(ids[n] for n in range(len(keys)) for _, ids in group)

        for step in self.steps:
            template, bracket, _ = step.id.partition("[")
            if not bracket:
                flush()
                order.append(step.id)
            elif blocks and blocks[-1][0] == template:
                blocks[-1][1].append(step.id)
            else:
                blocks.append((template, [step.id]))
        flush()
        return {sid: rank for rank, sid in enumerate(order)}

    def position(self, path: str | Sequence[str | int] = "") -> Position:
        """Where a top-level field is written: "secrets.vpn", "endpoints.compute"."""
        return self.source.key(field_path(path))
