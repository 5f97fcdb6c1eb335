"""What every path's walk shares: the live reads, and the ledger, to name the plan step that
made each resource a hop reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.ledger import Ledger, ResourceRecord
from orchestrator.verify.live import Live, compute_path


@dataclass
class Context:
    live: Live
    ledger: Ledger
    # Whether hops Google can trace are also asked of its Network Management analysis
    # (connectivity tests), and whether those tests are kept afterwards.
    connectivity_tests: bool = True
    keep_tests: bool = False
    # What was already asked of Google in this run, by question (a test per forwarding rule
    # and port, whatever the number of paths through it).
    memo: dict[Any, Any] = field(default_factory=dict)
    _by_path: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_path = {compute_path(r.path): sid for sid, r in self.ledger.resources.items()}

    def records(self, kind: str) -> list[ResourceRecord]:
        return [r for r in self.ledger.resources.values()
                if r.kind == kind and r.status == "present"]

    def step_at(self, path: str) -> str | None:
        """The step whose resource is at `path` (a URL or a path), if this plan made it."""
        return self._by_path.get(compute_path(path))

    def steps_under(self, prefix: str, kind: str) -> list[str]:
        return [r.step_id for r in self.records(kind) if r.path.startswith(prefix)]

    def projects(self, *more: str) -> list[str]:
        """The projects the plan's resources are in, and `more`: where to look for the DNS
        zones a network may see."""
        found = dict.fromkeys(more)
        for rec in self.ledger.resources.values():
            if rec.path.startswith("projects/"):
                found[rec.path.split("/")[1]] = None
        return list(found)

    def value(self, step: str | None, name: str) -> Any:
        rec = self.ledger.resources.get(step or "")
        return rec.outputs.get(name) if rec else None
