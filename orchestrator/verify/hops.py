"""How a path is walked: its hops in order, each reading what the hops before it found; a hop
whose input an earlier hop did not find is `unknown` (not reached), and a read that does not
answer makes its hop `unknown` with Google's words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.verify import routing
from orchestrator.verify.live import Unreadable
from orchestrator.verify.report import Hop, RequestPath

# (hop, what it needs from the hops before, check): the check returns the hop, and records in
# `found` what the hops after it need.
HopSpec = tuple[str, tuple[str, ...], Callable[[Any], Hop]]


def follow(path: RequestPath, hops: tuple[HopSpec, ...], walk: Any) -> RequestPath:
    for name, needs, check in hops:
        missing = next((n for n in needs if walk.found.get(n) is None), None)
        if missing is not None:
            path.hops.append(Hop(name, "unknown", f"not reached: no {missing} to follow "
                                 "(see the hops before)"))
            continue
        try:
            path.hops.append(check(walk))
        except (Unreadable, routing.NotFollowed) as exc:
            path.hops.append(Hop(name, "unknown", str(exc)))
    return path
