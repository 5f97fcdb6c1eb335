"""Architecture B's southbound paths: from the Apigee runtime, through the network it is peered
with (the hub), over HA VPN and Cloud Router, to a backend in another VPC network (a spoke).

The backends are the names meant for Apigee to resolve (A records in private zones visible to the
hub) whose address lies in a subnet of another network of the plan, the plan having HA VPN
gateways in both:

    dns → backend-network → vpn-tunnels → bgp → routes-to-backend → routes-to-apigee
    → peering-export → firewall

Google's rules are cited where they are checked. Routes are read from Cloud Router's status
(`routers.getRouterStatus`: each BGP session's state and the best routes learned).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from orchestrator.verify import connectivity, firewall
from orchestrator.verify.context import Context
from orchestrator.verify.hops import HopSpec, follow
from orchestrator.verify.live import Unreadable, compute_path
from orchestrator.verify.report import Hop, RequestPath
from orchestrator.verify.resolve import (
    forwarding_for,
    fqdn,
    not_forwarded,
    resolve,
    runtime_dns,
    runtime_network,
)

PATTERN = "vpn-southbound"
# The peering Service Networking makes for private services access, whose custom routes the
# hub must export so that Apigee's tenant network learns the routes Cloud Router learned
# (https://cloud.google.com/vpc/docs/configure-private-services-access#exchange-custom-routes).
SERVICE_PEERING = "servicenetworking-googleapis-com"
# The port a backend is checked on when no proxy target names one.
DEFAULT_PORT = 443


@dataclass
class Backend:
    organization: str
    hub: str
    name: str
    address: str
    subnet: dict[str, Any]
    port: int = DEFAULT_PORT


@dataclass
class Walk:
    ctx: Context
    backend: Backend
    found: dict[str, Any] = field(default_factory=dict)


def paths(ctx: Context) -> list[RequestPath]:
    out = []
    for backend in _backends(ctx):
        walk = Walk(ctx, backend)
        out.append(follow(RequestPath(
            PATTERN, f"{backend.organization} → {backend.name.rstrip('.')}",
            request=f"{backend.name.rstrip('.')}:{backend.port} ({backend.address})"),
            HOPS, walk))
    return out


def _backends(ctx: Context) -> list[Backend]:
    subnets = _plan_subnets(ctx)
    found = []
    for rec in ctx.records("apigee.organization"):
        organization = rec.path.split("/")[1]
        try:
            _, hub = runtime_network(ctx.live, organization)
            records = _records_visible_to(ctx, hub)
        except Unreadable:
            continue
        gateways = _gateway_networks(ctx)
        for name, address in records:
            subnet = _subnet_of(subnets, address)
            spoke = compute_path((subnet or {}).get("network", ""))
            # A VPN path is one the plan builds: HA VPN gateways in both networks.
            if subnet is not None and spoke != hub and {hub, spoke} <= gateways:
                found.append(Backend(organization, hub, name, address, subnet))
    return found


def _plan_subnets(ctx: Context) -> list[dict[str, Any]]:
    out = []
    for rec in ctx.records("compute.subnetwork"):
        try:
            subnet = ctx.live.compute(rec.path)
        except Unreadable:
            continue
        if subnet is not None and subnet.get("purpose", "PRIVATE") == "PRIVATE":
            out.append(subnet)
    return out


def _subnet_of(subnets: list[dict[str, Any]], address: str) -> dict[str, Any] | None:
    ip = ipaddress.ip_address(address)
    return next((s for s in subnets if ip in ipaddress.ip_network(s["ipCidrRange"])), None)


def _records_visible_to(ctx: Context, network: str) -> list[tuple[str, str]]:
    """(name, address) of the A records the plan made in private zones that `network` sees:
    the names meant for Apigee's runtime to resolve there (whether it does is the dns hop's
    question)."""
    out = []
    for rec in ctx.records("dns.record_set"):
        if rec.outputs.get("type") != "A":
            continue
        zone_path = rec.path.split("/rrsets/")[0]
        project, zone_name = zone_path.split("/")[1], zone_path.rsplit("/", 1)[-1]
        zone = ctx.live.get("dns.managedZones.get", project=project, managedZone=zone_name)
        networks = (zone or {}).get("privateVisibilityConfig", {}).get("networks", [])
        if any(compute_path(n.get("networkUrl", "")) == network for n in networks):
            out += [(rec.outputs["name"], a) for a in rec.outputs.get("rrdatas", [])]
    return out


# --- the hops -------------------------------------------------------------------------------


def _dns(w: Walk) -> Hop:
    ctx, b = w.ctx, w.backend
    entries = runtime_dns(ctx.live, b.organization)
    forwarded = forwarding_for(entries, b.name)
    if forwarded is None or forwarded.network != b.hub:
        return not_forwarded(ctx, entries, b.name, peered=True)
    answer = resolve(ctx.live, ctx.projects(b.hub.split("/")[1]), b.hub, b.name)
    if answer.problem or b.address not in answer.addresses:
        return Hop("dns", "broken", answer.problem or (
            f"{b.name} resolves to {', '.join(answer.addresses)} in {b.hub}, not {b.address}"),
            None, f"make {b.name} resolve to {b.address} in a zone visible to {b.hub}")
    project, zone_name, record = answer.records[-1]
    w.found["address"] = b.address
    return Hop("dns", "ok", f"{fqdn(b.name)} → {b.address} in {b.hub}",
               ctx.step_at(f"projects/{project}/managedZones/{zone_name}/rrsets/"
                           f"{record['name']}/{record['type']}"))


def _backend_network(w: Walk) -> Hop:
    b = w.backend
    spoke = compute_path(b.subnet["network"])
    w.found["spoke"] = spoke
    return Hop("backend-network", "ok",
               f"{b.address} is in subnet {b.subnet['name']} ({b.subnet['ipCidrRange']}) of "
               f"{spoke}", w.ctx.step_at(b.subnet["selfLink"]))


def _gateway_networks(ctx: Context) -> set[str]:
    out = set()
    for rec in ctx.records("compute.vpn_gateway"):
        gateway = ctx.live.compute(rec.path)
        if gateway:
            out.add(compute_path(gateway.get("network", "")))
    return out


def _gateways(ctx: Context, network: str) -> set[str]:
    out = set()
    for rec in ctx.records("compute.vpn_gateway"):
        gateway = ctx.live.compute(rec.path)
        if gateway and compute_path(gateway.get("network", "")) == network:
            out.add(compute_path(gateway["selfLink"]))
    return out


def _vpn_tunnels(w: Walk) -> Hop:
    ctx, hub, spoke = w.ctx, w.backend.hub, w.found["spoke"]
    hub_gateways, spoke_gateways = _gateways(ctx, hub), _gateways(ctx, spoke)
    tunnels = []
    for rec in ctx.records("compute.vpn_tunnel"):
        tunnel = ctx.live.compute(rec.path)
        if tunnel and compute_path(tunnel.get("vpnGateway", "")) in hub_gateways and (
                compute_path(tunnel.get("peerGcpGateway", "")) in spoke_gateways):
            tunnels.append((rec.step_id, tunnel))
    if not tunnels:
        return Hop("vpn-tunnels", "broken", f"no HA VPN tunnel from a gateway of {hub} to a "
                   f"gateway of {spoke}", None,
                   "connect the two networks' HA VPN gateways with tunnels")
    up = [t for _, t in tunnels if t.get("status") == "ESTABLISHED"]
    states = ", ".join(f"{t['name']} {t.get('status')}" for _, t in tunnels)
    w.found["tunnels"] = [compute_path(t["selfLink"]) for t in up] or None
    if not up:
        return Hop("vpn-tunnels", "broken", states, tunnels[0][0],
                   "see the tunnels' detailedStatus: IKE settings, shared secrets, peer gateway")
    if len(up) < 2:
        # HA VPN's 99.99% availability needs two tunnels
        # (https://cloud.google.com/network-connectivity/docs/vpn/concepts/topologies).
        return Hop("vpn-tunnels", "warning", f"{states}: one tunnel, no redundancy",
                   tunnels[0][0], "add a second tunnel on the gateways' other interface")
    return Hop("vpn-tunnels", "ok", states, tunnels[0][0])


def _router_status(ctx: Context, network: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for rec in ctx.records("compute.router"):
        router = ctx.live.compute(rec.path)
        if not router or compute_path(router.get("network", "")) != network:
            continue
        _, project, _, region, _, name = compute_path(router["selfLink"]).split("/")
        status = ctx.live.get("compute.routers.getRouterStatus", project=project,
                              region=region, router=name) or {}
        out.append((rec.step_id, status.get("result", {})))
    return out


def _bgp(w: Walk) -> Hop:
    ctx, tunnels = w.ctx, set(w.found["tunnels"])
    sessions = [(step, s) for step, status in _router_status(ctx, w.backend.hub)
                for s in status.get("bgpPeerStatus", [])
                if compute_path(s.get("linkedVpnTunnel", "")) in tunnels]
    up = [s for _, s in sessions if s.get("status") == "UP"]
    states = ", ".join(f"{s['name']} {s.get('status')}" for _, s in sessions) or "none"
    if not up:
        return Hop("bgp", "broken", f"BGP sessions on the established tunnels: {states}",
                   sessions[0][0] if sessions else None,
                   "configure a BGP peer on each tunnel's interface, on both routers, with "
                   "mirrored addresses and ASNs")
    w.found["sessions"] = up
    return Hop("bgp", "ok", f"BGP sessions: {states}", sessions[0][0])


def _covered(routes: list[dict[str, Any]], target: ipaddress.IPv4Network) -> list[str]:
    return [r["destRange"] for r in routes
            if target.subnet_of(ipaddress.ip_network(r["destRange"]))]  # type: ignore[arg-type]


def _routes_to_backend(w: Walk) -> Hop:
    ctx, b = w.ctx, w.backend
    backend_range = ipaddress.ip_network(b.subnet["ipCidrRange"])
    tunnels = set(w.found["tunnels"])
    learned = [r for _, status in _router_status(ctx, b.hub)
               for r in status.get("bestRoutes", [])
               if compute_path(r.get("nextHopVpnTunnel", "")) in tunnels]
    if _covered(learned, backend_range):
        w.found["routed_to_backend"] = True
        return Hop("routes-to-backend", "ok",
                   f"the hub learned {_ranges(_covered(learned, backend_range))} over BGP from "
                   f"the spoke, which holds {b.subnet['ipCidrRange']}")
    spoke_routers = [step for step, _ in _router_status(ctx, w.found["spoke"])]
    return Hop("routes-to-backend", "broken",
               f"the hub's routers learned {_ranges(r['destRange'] for r in learned)} over BGP "
               f"from the spoke, not the backend's range {b.subnet['ipCidrRange']}",
               spoke_routers[0] if spoke_routers else None,
               f"advertise {b.subnet['ipCidrRange']} from the spoke's router (ALL_SUBNETS, or "
               "a custom range holding it)")


def _ranges(ranges: Any) -> str:
    return ", ".join(dict.fromkeys(ranges)) or "nothing"


def _apigee_ranges(ctx: Context, organization: str) -> list[ipaddress.IPv4Network]:
    """The runtime ranges of the organization's instances (each instance's /22, where its
    host address lies): where Apigee's requests come from."""
    instances = ctx.live.items("apigee.organizations.instances.list", "instances",
                               parent=f"organizations/{organization}")
    return [ipaddress.ip_interface(f"{i['host']}/22").network  # type: ignore[misc]
            for i in instances if i.get("host")]


def _routes_to_apigee(w: Walk) -> Hop:
    ctx, b = w.ctx, w.backend
    ranges = _apigee_ranges(ctx, b.organization)
    w.found["apigee_ranges"] = ranges or None
    if not ranges:
        raise Unreadable(f"organization {b.organization} has no instance with an address")
    learned = [r for _, status in _router_status(ctx, w.found["spoke"])
               for r in status.get("bestRoutes", [])]
    missing = [str(r) for r in ranges if not _covered(learned, r)]  # type: ignore[arg-type]
    if not missing:
        return Hop("routes-to-apigee", "ok",
                   f"the spoke learned {_ranges(r['destRange'] for r in learned)} over BGP, "
                   f"which holds Apigee's {', '.join(str(r) for r in ranges)}")
    hub_routers = [step for step, _ in _router_status(ctx, b.hub)]
    return Hop("routes-to-apigee", "broken",
               f"the spoke's routers learned {_ranges(r['destRange'] for r in learned)} over "
               f"BGP, not Apigee's runtime range {', '.join(missing)}: the answers cannot go "
               "back", hub_routers[0] if hub_routers else None,
               f"advertise {', '.join(missing)} from the hub's router (advertiseMode CUSTOM, "
               "advertisedIpRanges): Cloud Router does not advertise peered ranges by itself")


def _reachability(w: Walk) -> Hop:
    """Google's analysis of the VPN crossing: from an address of a hub subnet (Apigee's own
    addresses are not in the hub's subnets, so one of the hub's stands in for them, firewalls
    bypassed: the firewall hop checks Apigee's ranges) to the backend's address in the spoke."""
    ctx, b = w.ctx, w.backend
    tunnels = w.found["tunnels"]
    if not ctx.connectivity_tests:
        return Hop("reachability", "unknown", "not asked: connectivity tests are off")
    hub_subnets = [s for s in _plan_subnets(ctx) if compute_path(s.get("network", "")) == b.hub]
    if not hub_subnets:
        raise Unreadable(f"{b.hub} has no subnet of the plan's to test from")
    source = {"ipAddress": str(next(ipaddress.ip_network(hub_subnets[0]["ipCidrRange"]).hosts())),
              "network": hub_subnets[0]["network"], "projectId": b.hub.split("/")[1]}
    spoke = w.found["spoke"]
    destination = {"ipAddress": b.address, "network": spoke,
                   "port": b.port, "projectId": spoke.split("/")[1]}
    key = ("reachability", b.hub, b.address, b.port)
    if key not in ctx.memo:
        ctx.memo[key] = connectivity.run(ctx.live, b.hub.split("/")[1], source, destination,
                                         keep=ctx.keep_tests, bypass_firewalls=True)
    result, trace, final = connectivity.summary(ctx.memo[key])
    evidence = (f"connectivity test from {source['ipAddress']} (a hub subnet) to {b.address}:"
                f"{b.port}, firewalls bypassed: {result} ({trace})")
    step = ctx.step_at(tunnels[0])
    cause = final.get("drop", {}).get("cause", "")
    if result == "REACHABLE":
        return Hop("reachability", "ok", evidence, step)
    crossed = "ARRIVE_AT_VPN_TUNNEL" in trace
    if result == "UNREACHABLE" and cause == "UNKNOWN_INTERNAL_ADDRESS" and crossed:
        return Hop("reachability", "warning",
                   f"{evidence}: Google carries it over the tunnel into the spoke, and knows "
                   f"nothing listening at {b.address}", ctx.step_at(b.subnet["selfLink"]),
                   f"run the backend (a VM or an internal load balancer) at {b.address}")
    if result == "UNREACHABLE":
        return Hop("reachability", "broken", f"{evidence}, dropped: {cause}", step,
                   f"see Google's drop cause {cause} in the test (--keep-tests keeps it)")
    return Hop("reachability", "unknown",
               f"{evidence}: {final.get('abort', {}).get('cause', 'no verdict')}", step)


def _peering_export(w: Walk) -> Hop:
    ctx, hub = w.ctx, w.backend.hub
    network = ctx.live.compute(hub) or {}
    peering = next((p for p in network.get("peerings", []) if p.get("name") == SERVICE_PEERING),
                   None)
    step = next((r.step_id for r in ctx.records("compute.network_peering_routes")
                 if r.path == f"{hub}/peerings/{SERVICE_PEERING}"), None)
    if peering is None:
        return Hop("peering-export", "broken", f"{hub} has no {SERVICE_PEERING} peering", None,
                   "connect the network to Service Networking")
    if not peering.get("exportCustomRoutes"):
        return Hop("peering-export", "broken",
                   f"{SERVICE_PEERING} on {hub} does not export custom routes: Apigee never "
                   "learns the routes the hub learned over VPN", step,
                   "set exportCustomRoutes on the peering")
    return Hop("peering-export", "ok", f"{SERVICE_PEERING} on {hub} exports custom routes", step)


def _firewall(w: Walk) -> Hop:
    """The spoke network's ingress rules decide (firewall.py)."""
    ctx, b, spoke = w.ctx, w.backend, w.found["spoke"]
    project = spoke.split("/")[1]
    rules = firewall.ingress_rules(ctx, spoke)
    verdicts = [(source, firewall.deciding(rules, source, b.port))
                for source in w.found["apigee_ranges"]]
    blocked = [(s, r) for s, r in verdicts if r is None or "denied" in r]
    if not blocked:
        named = ", ".join(sorted({r["name"] for _, r in verdicts if r}))
        tagged = [r["name"] for _, r in verdicts if r and r.get("targetTags")]
        status = "warning" if tagged else "ok"
        return Hop("firewall", status,
                   f"{named} admits Apigee's range on tcp:{b.port} in {spoke}"
                   + (f" (only for instances tagged {', '.join(tagged)})" if tagged else ""),
                   ctx.step_at(f"projects/{project}/global/firewalls/{named.split(', ')[0]}"))
    source, rule = blocked[0]
    allowing = [r["name"] for r in rules if "allowed" in r and any(
        ipaddress.ip_network(s).overlaps(source) for s in r.get("sourceRanges", []))]
    why = (f"{rule['name']} denies it" if rule else
           f"no rule admits it ({', '.join(allowing) or 'none'} "
           "admit other ports or ranges), so the implied deny does")
    return Hop("firewall", "broken", f"Apigee's {source} to tcp:{b.port} in {spoke}: {why}",
               firewall.rule_to_widen(ctx, rules, source),
               f"allow tcp:{b.port} from {source} into the spoke")


HOPS: tuple[HopSpec, ...] = (
    ("dns", (), _dns),
    ("backend-network", ("address",), _backend_network),
    ("vpn-tunnels", ("spoke",), _vpn_tunnels),
    ("bgp", ("tunnels",), _bgp),
    ("routes-to-backend", ("sessions",), _routes_to_backend),
    ("routes-to-apigee", ("sessions",), _routes_to_apigee),
    # Google's analysis only where verify's own reads found nothing wrong: a second opinion,
    # not the same finding twice.
    ("reachability", ("routed_to_backend",), _reachability),
    ("peering-export", (), _peering_export),
    ("firewall", ("apigee_ranges", "spoke"), _firewall),
)
