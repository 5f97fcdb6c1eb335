"""`verify`: whether an applied architecture carries traffic, hop by hop, from live reads.

The request paths are derived from the ledger (what the plan made) and the live resources
(what is deployed), not declared for verification; each pattern module walks its own:

- `psc_southbound`: Apigee → endpoint attachment → service attachment → internal Application
  Load Balancer → serverless NEG → Cloud Run (architecture A).
- `vpn_southbound`: Apigee → the hub network → HA VPN and Cloud Router → a backend in a spoke
  network (architecture B).
- `northbound`: a client → external Application Load Balancer → PSC NEG → the Apigee instance →
  the environment group that serves the hostname.

With `probe`, a request also goes through each API proxy target under an Apigee debug
session (`probe`), and what became of it is each path's last hop.

Nothing is written but connectivity tests and debug sessions, which verify deletes.
"""

from __future__ import annotations

from typing import Any

from orchestrator.ledger import Ledger
from orchestrator.verify import northbound, psc_southbound, vpn_southbound
from orchestrator.verify import probe as probes
from orchestrator.verify.context import Context
from orchestrator.verify.live import Live
from orchestrator.verify.report import FORMAT_VERSION, Hop, Report, RequestPath

PATTERNS = (psc_southbound, vpn_southbound, northbound)


def verify(plan_name: str, ledger: Ledger, clients: Any, clock: Any, *,
           connectivity_tests: bool = True, keep_tests: bool = False, probe: bool = False,
           ingress: str | None = None) -> Report:
    """connectivity_tests: also ask Google's Network Management analysis about the hops it can
    trace (tests created, run and deleted; kept with keep_tests). probe: also send a request
    through each proxy target under a debug session (`probe.py`), to `ingress` when given."""
    ctx = Context(Live(clients, clock), ledger, connectivity_tests, keep_tests)
    report = Report(plan_name)
    for pattern in PATTERNS:
        report.paths.extend(pattern.paths(ctx))
    if probe:
        probes.probe(ctx, report.paths, ingress)
    return report


__all__ = ["FORMAT_VERSION", "Hop", "Report", "RequestPath", "verify"]
