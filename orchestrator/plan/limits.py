"""Limits Google sets across steps, checked before anything is sent (a wheel's routers above
all, where for_each makes the steps):

- a Cloud Router takes at most 128 BGP peers, and a network at most five Cloud Routers per
  region (https://cloud.google.com/network-connectivity/docs/router/quotas: "BGP peers per
  Cloud Router"; "each network is limited to five Cloud Routers per region");
- a BGP session joins two autonomous systems: a peer whose `peerAsn` is its own router's ASN
  would be an internal session between members of one AS, and routes learned from it are not
  passed on (RFC 4271, 9.2: a route learned from an internal peer is not advertised to other
  internal peers), so a mesh member given another's ASN breaks the mesh.
Both are judged where the values are literal (after vars and for_each): a router named by a
reference to a router step in the plan, that step's `bgp.asn`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable

from orchestrator.plan.errors import Diagnostic
from orchestrator.plan.model import Step

PEERS_PER_ROUTER = 128
ROUTERS_PER_NETWORK_AND_REGION = 5
_ROUTER_REF = re.compile(r"\$\{([^.}]+)\.name\}\Z")


def check(steps: list[Step]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    by_id = {s.id: s for s in steps}
    peers: dict[tuple[str, ...], list[Step]] = defaultdict(list)
    for step in steps:
        if step.kind != "compute.router_bgp_peer":
            continue
        router = step.scope.get("router", "")
        peers[(step.scope.get("project", ""), step.scope.get("region", ""), router)].append(step)
        owner = _router_step(router, by_id)
        asn = (owner.properties.get("bgp") or {}).get("asn") if owner else None
        peer_asn = step.properties.get("peerAsn")
        if isinstance(asn, int) and asn == peer_asn:
            out.append(Diagnostic.at(
                step.position("properties.peerAsn"), f"step '{step.id}' properties.peerAsn",
                f"{peer_asn} is the ASN of its own router (step '{owner.id}'): a BGP session "
                "between two routers of one AS passes no routes on; give each router its own ASN"))
    routers: dict[tuple[str, ...], list[Step]] = defaultdict(list)
    for step in steps:
        network = step.properties.get("network")
        if step.kind == "compute.router" and isinstance(network, str):
            # A network named as a project-relative path is the router's project's.
            home = "" if "${" in network or network.startswith(
                ("projects/", "https://")) else step.scope.get("project", "")
            routers[(home, step.scope.get("region", ""), network)].append(step)
    out += _over_limit(
        routers, ROUTERS_PER_NETWORK_AND_REGION, "properties.network",
        lambda key, n: f"{n} Cloud Routers in network {key[2]}, region {key[1]}: a network "
                       f"takes at most {ROUTERS_PER_NETWORK_AND_REGION} per region")
    out += _over_limit(
        peers, PEERS_PER_ROUTER, "router",
        lambda key, n: f"{n} BGP peers on router {key[2]}: a Cloud Router takes at most "
                       f"{PEERS_PER_ROUTER} (a wheel of M members gives each router 2·(M-1))")
    return out


def _over_limit(groups: dict[tuple[str, ...], list[Step]], limit: int, field: str,
                say: Callable[[tuple[str, ...], int], str]) -> list[Diagnostic]:
    """For each group over `limit`, a diagnostic at its first step past it."""
    out = []
    for key, found in groups.items():
        if len(found) > limit:
            extra = found[limit]
            out.append(Diagnostic.at(extra.position(field), f"step '{extra.id}' {field}",
                                     say(key, len(found))))
    return out


def _router_step(router: str, by_id: dict[str, Step]) -> Step | None:
    found = _ROUTER_REF.match(router)
    step = by_id.get(found.group(1)) if found else None
    return step if step is not None and step.kind == "compute.router" else None
