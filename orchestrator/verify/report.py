"""What `verify` found: per request path, each hop's status, the evidence read, and for a broken
hop the plan step to change and how.

A hop is `ok` (the live reads show it carries the request), `warning` (it carries it, with a
caveat the user should know: TLS not verified, capacity limited), `broken` (Google accepted the
configuration, but the request cannot pass here) or `unknown` (what could not be read or
followed, and why; the hops after a broken or unknown one that depend on it are unknown too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warning", "broken", "unknown"]

# Worst first: a path is as good as its worst hop.
SEVERITY: dict[str, int] = {"broken": 3, "unknown": 2, "warning": 1, "ok": 0}

# The JSON document's version: bumped when a field changes meaning or goes away.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Hop:
    """One hop of a request path, as the live reads show it.

    name: what the hop is ("dns", "endpoint-attachment", ...), stable for scripts.
    evidence: what was read, in Google's field names and values.
    step: the plan step whose resource this hop is about (for a broken hop, the one to change).
    fix: for a broken hop, what to change.
    """

    name: str
    status: Status
    evidence: str
    step: str | None = None
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hop": self.name, "status": self.status, "evidence": self.evidence}
        if self.step:
            out["step"] = self.step
        if self.fix:
            out["fix"] = self.fix
        return out


@dataclass
class RequestPath:
    """One request the architecture is built to carry, from where it starts to where it lands.

    pattern: which of the architecture's paths this is ("psc-southbound", ...).
    name: the request, as a user names it ("shop → orders").
    request: the request's URL (what the proxy sends), when there is one.
    """

    pattern: str
    name: str
    request: str = ""
    hops: list[Hop] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return worst(h.status for h in self.hops)

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "name": self.name,
            "request": self.request,
            "status": self.status,
            "hops": [h.to_json() for h in self.hops],
        }


@dataclass
class Report:
    plan: str
    paths: list[RequestPath] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return worst(p.status for p in self.paths)

    @property
    def ok(self) -> bool:
        """No broken hop: every path carries traffic, possibly with warnings or hops that
        could not be read."""
        return self.status != "broken"

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in SEVERITY}
        for path in self.paths:
            for hop in path.hops:
                out[hop.status] += 1
        return out

    def step_statuses(self) -> dict[str, Status]:
        """Each step a hop names, with the worst status among those hops (for the graph)."""
        out: dict[str, Status] = {}
        for path in self.paths:
            for hop in path.hops:
                if hop.step:
                    out[hop.step] = worst([out.get(hop.step, "ok"), hop.status])
        return out

    def broken(self) -> list[tuple[RequestPath, Hop]]:
        return [(p, h) for p in self.paths for h in p.hops if h.status == "broken"]

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "plan": self.plan,
            "status": self.status,
            "counts": self.counts(),
            "paths": [p.to_json() for p in self.paths],
        }


def worst(statuses: Any) -> Status:
    found: Status = "ok"
    for status in statuses:
        if SEVERITY[status] > SEVERITY[found]:
            found = status
    return found
