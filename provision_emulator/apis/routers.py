"""Cloud Router, registered on compute's rules: what an insert or a patch may hold, and the BGP
sessions `routers.getRouterStatus` reports.

Interfaces and BGP peers live in the router's `interfaces[]` and `bgpPeers[]`; a patch replaces
each list it sends whole (compute's JSON merge patch), so clients read, modify and write them.

A BGP session is UP when its VPN tunnel is ESTABLISHED and the router at the tunnel's other end
has the mirror image of it: an interface on the peer tunnel in the same /30, whose address is
this peer's `peerIpAddress` and whose own peer's `peerIpAddress` is this interface's address,
with each side's `peerAsn` the other router's `bgp.asn`. Over UP sessions each router learns
what the other advertises (its custom ranges, and its subnets for ALL_SUBNETS or the default
mode); those are the status's best routes.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provision_emulator import errors, formats, generic
from provision_emulator.apis import compute, vpn
from provision_emulator.call import Call
from provision_emulator.errors import ApiError
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

ROUTERS = "routers"
LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")
# RFC 6996 private ASNs, and Google's own (Partner Interconnect routers use it).
PRIVATE_ASNS = (range(64512, 65535), range(4200000000, 4294967295))
GOOGLE_ASN = 16550
DEFAULT_PRIORITY = 100
KEEPALIVE = 20
ROUTERS_PER_NETWORK_AND_REGION = 5
PEERS_PER_ROUTER = 128


# --- what a router may hold -----------------------------------------------------------------


@compute.RULES.on_create(ROUTERS)
def _router(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    if not body.get("network"):
        raise compute.required_field("network")
    _check(cloud, call, body)
    region = compute.region_of(call.path)
    network = cloud.resolve(call, body["network"])
    others = [b for b in compute.in_network(cloud, network, ROUTERS)
              if compute.last(b.get("region", "")) == region] if network else []
    if len(others) >= ROUTERS_PER_NETWORK_AND_REGION:
        # "each network is limited to five Cloud Routers per region"
        # (https://cloud.google.com/network-connectivity/docs/router/quotas); the operation
        # fails as compute's quotas do (the limit's name in the message is *ours*).
        raise errors.FailsInOperation(ApiError(
            403, f"Quota 'ROUTERS_PER_NETWORK_PER_REGION' exceeded.  Limit: "
            f"{float(ROUTERS_PER_NETWORK_AND_REGION)} in region {region}.",
            reason="quotaExceeded", status="RESOURCE_EXHAUSTED"))


@compute.RULES.on_update(ROUTERS)
def _router_update(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    if body.get("network") != res.body.get("network"):
        raise compute.invalid_field(
            "network", body.get("network", ""), "The network of a router cannot be changed."
        )
    old_asn = (res.body.get("bgp") or {}).get("asn")
    if old_asn is not None and (body.get("bgp") or {}).get("asn") != old_asn:
        raise compute.invalid_field(
            "bgp.asn", (body.get("bgp") or {}).get("asn", ""), "The ASN of a router is fixed."
        )
    _check(cloud, call, body)


def _check(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    bgp = body.get("bgp")
    if bgp is not None:
        _check_asn(bgp.get("asn"))
        bgp.setdefault("advertiseMode", "DEFAULT")
        bgp.setdefault("keepaliveInterval", KEEPALIVE)
        _check_advertisements("bgp", bgp)
    interfaces = _check_interfaces(cloud, call, body)
    peers = body.get("bgpPeers") or []
    if peers and not (bgp or {}).get("asn"):
        raise compute.required_field("bgp.asn")
    seen: set[str] = set()
    for i, peer in enumerate(peers):
        _check_peer(f"bgpPeers[{i}]", peer, interfaces, seen)
    if len(peers) > PEERS_PER_ROUTER:
        # "BGP peers per Cloud Router": 128 (router quotas page, as above; the words *ours*).
        raise compute.invalid_field("bgpPeers", len(peers), f"A Cloud Router has at most "
                                    f"{PEERS_PER_ROUTER} BGP peers.")


def _check_asn(asn: Any) -> None:
    if asn is None:
        raise compute.required_field("bgp.asn")
    if asn != GOOGLE_ASN and not any(asn in r for r in PRIVATE_ASNS):
        raise compute.invalid_field(  # Google's words (C37)
            "bgp.asn", asn, "Local ASN must be either in the RFC6996 private ASN ranges: "
            "[64512..65534], [4200000000..4294967294]; or be the value of [16550]."
        )


def _check_advertisements(field: str, holder: dict[str, Any]) -> None:
    custom = holder.get("advertiseMode") == "CUSTOM"
    for name in ("advertisedGroups", "advertisedIpRanges"):
        if holder.get(name) and not custom:
            raise compute.invalid_field(
                f"{field}.{name}",
                holder[name],
                f"{name} may only be set when advertiseMode is CUSTOM.",
            )
    for j, advertised in enumerate(holder.get("advertisedIpRanges") or []):
        cidr = str(advertised.get("range") or "")
        try:
            ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise compute.invalid_field(
                f"{field}.advertisedIpRanges[{j}].range", cidr, "Invalid IP range."
            ) from exc


def _check_interfaces(
    cloud: Cloud, call: Call, body: dict[str, Any]
) -> dict[str, ipaddress.IPv4Interface]:
    """The router's interfaces by name, each with its address and /30."""
    region = compute.region_of(call.path)
    own = compute.self_link(call.path)
    out: dict[str, ipaddress.IPv4Interface] = {}
    linked: set[str] = set()
    for i, iface in enumerate(body.get("interfaces") or []):
        field = f"interfaces[{i}]"
        name = iface.get("name")
        if not name:
            raise compute.required_field(f"{field}.name")
        if name in out:
            raise compute.invalid_field(f"{field}.name", name, "Duplicate interface name.")
        address = _link_local(f"{field}.ipRange", iface.get("ipRange"))
        if any(address.network.overlaps(other.network) for other in out.values()):
            raise compute.invalid_field(
                f"{field}.ipRange", iface["ipRange"], "The range overlaps another interface's."
            )
        out[name] = address
        link = iface.get("linkedVpnTunnel")
        if not link:
            continue
        tunnel = cloud.resolve(call, link)
        if tunnel is None or compute.region_of(tunnel.path) != region:
            raise compute.invalid_field(
                f"{field}.linkedVpnTunnel", link, f"The VPN tunnel must be in region '{region}'."
            )
        if tunnel.body.get("router") != own:
            raise compute.invalid_field(
                f"{field}.linkedVpnTunnel", link, "The VPN tunnel does not use this router."
            )
        if link in linked:
            raise compute.invalid_field(
                f"{field}.linkedVpnTunnel", link, "Another interface already links this tunnel."
            )
        linked.add(link)
    return out


def _link_local(field: str, value: Any) -> ipaddress.IPv4Interface:
    try:
        address = ipaddress.IPv4Interface(str(value or ""))
    except ValueError as exc:
        raise compute.invalid_field(field, value or "", "Invalid IP range.") from exc
    if "/" not in str(value) or not address.network.subnet_of(LINK_LOCAL):
        raise compute.invalid_field(
            field, value, "The IP range must be in the RFC3927 link-local address space."
        )
    if address.network.num_addresses > 2 and address.ip in (
        address.network.network_address,
        address.network.broadcast_address,
    ):
        raise compute.invalid_field(field, value, "The address must be a host of the range.")
    return address


def _check_peer(
    field: str,
    peer: dict[str, Any],
    interfaces: dict[str, ipaddress.IPv4Interface],
    seen: set[str],
) -> None:
    name = peer.get("name")
    if not name:
        raise compute.required_field(f"{field}.name")
    if name in seen:
        raise compute.invalid_field(f"{field}.name", name, "Duplicate BGP peer name.")
    seen.add(name)
    address = interfaces.get(str(peer.get("interfaceName") or ""))
    if address is None:
        raise compute.invalid_field(
            f"{field}.interfaceName",
            peer.get("interfaceName", ""),
            "The BGP peer must name an interface of the router.",
        )
    if peer.get("peerAsn") is None:
        raise compute.required_field(f"{field}.peerAsn")
    given = peer.setdefault("ipAddress", str(address.ip))
    if given != str(address.ip):
        raise compute.invalid_field(
            f"{field}.ipAddress", given, "The address must be the interface's."
        )
    remote = str(peer.get("peerIpAddress") or "")
    try:
        remote_ip = ipaddress.IPv4Address(remote)
    except ValueError as exc:
        raise compute.invalid_field(
            f"{field}.peerIpAddress", remote, "Invalid IP address."
        ) from exc
    if remote_ip not in address.network or remote_ip == address.ip:
        raise compute.invalid_field(
            f"{field}.peerIpAddress",
            remote,
            f"The peer address must be another address of the interface's range {address.network}.",
        )
    peer.setdefault("advertiseMode", "DEFAULT")
    peer.setdefault("enable", "TRUE")
    _check_advertisements(field, peer)


# --- BGP sessions -------------------------------------------------------------------------------


@dataclass
class Session:
    peer: dict[str, Any]
    tunnel: Resource | None
    up: bool
    state: str  # the BGP finite-state machine's, as Google reports it
    since: float = 0.0
    remote_router: Resource | None = None
    remote_peer: dict[str, Any] | None = None


def _interface(router: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((i for i in router.get("interfaces") or [] if i.get("name") == name), None)


def _ip(iface: dict[str, Any]) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface(iface["ipRange"])


def session(cloud: Cloud, router: Resource, peer: dict[str, Any]) -> Session:
    iface = _interface(router.body, str(peer.get("interfaceName") or "")) or {}
    tunnel = compute.stored(cloud, iface.get("linkedVpnTunnel"))
    if tunnel is None or peer.get("enable") == "FALSE":
        return Session(peer, tunnel, up=False, state="Idle")
    if vpn.tunnel_status(cloud, tunnel) != vpn.ESTABLISHED:
        return Session(peer, tunnel, up=False, state="Idle")
    far = vpn.peer_tunnel(cloud, tunnel)
    remote = (
        compute.stored(cloud, far.body.get("router"))
        if far is not None
        else None
    )
    if far is None or remote is None:
        return Session(peer, tunnel, up=False, state="Active")
    far_link = compute.self_link(far.path)
    far_iface = next(
        (i for i in remote.body.get("interfaces") or [] if i.get("linkedVpnTunnel") == far_link),
        None,
    )
    far_peer = next(
        (
            p
            for p in remote.body.get("bgpPeers") or []
            if far_iface is not None and p.get("interfaceName") == far_iface.get("name")
        ),
        None,
    )
    if far_iface is None or far_peer is None or far_peer.get("enable") == "FALSE":
        return Session(peer, tunnel, up=False, state="Active", remote_router=remote)
    mine, theirs = _ip(iface), _ip(far_iface)
    mirrored = (
        mine.network == theirs.network
        and peer.get("peerIpAddress") == str(theirs.ip)
        and far_peer.get("peerIpAddress") == str(mine.ip)
    )
    asns = peer.get("peerAsn") == (remote.body.get("bgp") or {}).get("asn") and far_peer.get(
        "peerAsn"
    ) == (router.body.get("bgp") or {}).get("asn")
    if not (mirrored and asns):
        return Session(peer, tunnel, up=False, state="Active", remote_router=remote)
    since = max(r.created for r in (router, remote, tunnel, far))
    return Session(peer, tunnel, True, "Established", since, remote, far_peer)


def advertised(cloud: Cloud, router: Resource, peer: dict[str, Any]) -> list[str]:
    """The prefixes a router advertises to one of its BGP peers."""
    holder = peer if peer.get("advertiseMode") == "CUSTOM" else router.body.get("bgp") or {}
    custom = holder.get("advertiseMode") == "CUSTOM"
    prefixes = (
        []
        if custom and "ALL_SUBNETS" not in (holder.get("advertisedGroups") or [])
        else (_subnets(cloud, router))
    )
    if custom:
        prefixes += [r["range"] for r in holder.get("advertisedIpRanges") or [] if r.get("range")]
    return list(dict.fromkeys(prefixes))


def _subnets(cloud: Cloud, router: Resource) -> list[str]:
    """The subnet ranges a router sees: its region's, or every region's in a network whose
    dynamic routing is GLOBAL."""
    network = compute.stored(cloud, router.body.get("network"))
    if network is None:
        return []
    mode = (network.body.get("routingConfig") or {}).get("routingMode")
    region = compute.region_of(router.path)
    return [
        s.body["ipCidrRange"]
        for s in cloud.store.referrers("compute", network.path)
        if s.collection == "subnetworks"
        and s.body.get("purpose", "PRIVATE") == "PRIVATE"
        and (mode == "GLOBAL" or compute.region_of(s.path) == region)
    ]


def _routes(
    router: Resource, s: Session, prefixes: list[str], hop: tuple[str, Any, dict[str, Any]]
) -> list[dict[str, Any]]:
    """BGP routes over a session, `hop` being the advertising side's (address, ASN, BGP peer
    entry: its `advertisedRoutePriority` is the routes' priority)."""
    assert s.tunnel is not None
    next_hop, asn, advertiser = hop
    priority = advertiser.get("advertisedRoutePriority", DEFAULT_PRIORITY)
    return [
        {
            "kind": "compute#route",
            "creationTimestamp": formats.compute_time(s.since),
            "destRange": prefix,
            "network": router.body.get("network"),
            "nextHopIp": next_hop,
            "nextHopVpnTunnel": compute.self_link(s.tunnel.path),
            "priority": priority,
            "routeType": "BGP",
            "asPaths": [{"pathSegmentType": "AS_SEQUENCE", "asLists": [asn]}],
        }
        for prefix in prefixes
    ]


def _uptime(seconds: int) -> str:
    parts = []
    for unit, size in (("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    parts.append(f"{seconds} seconds")
    return ", ".join(parts)


def learned_routes(cloud: Cloud, router: Resource) -> list[dict[str, Any]]:
    """The BGP routes a router learned over its sessions that are up (its `bestRoutes`)."""
    routes: list[dict[str, Any]] = []
    for peer in router.body.get("bgpPeers") or []:
        s = session(cloud, router, peer)
        if s.up:
            assert s.remote_router is not None and s.remote_peer is not None
            routes += _routes(router, s, advertised(cloud, s.remote_router, s.remote_peer),
                              (str(peer["peerIpAddress"]), s.remote_router.body["bgp"]["asn"],
                               s.remote_peer))
    return routes


@compute.RULES.handler("compute.routers.preview")
def preview(cloud: Cloud, call: Call) -> dict[str, Any]:
    """The router as it would be with the body merged in (compute's JSON merge patch), checked
    as a patch is; nothing changes ("Calling this method does NOT create or update the router",
    the method's description in the compute v1 discovery document)."""
    res = generic.existing(cloud, call, call.path, generic.collection(call))
    body = compute.merge_patch(copy.deepcopy(res.body), call.body or {})
    _router_update(cloud, call, res, body)
    return {"resource": compute.RULES.render(cloud, Resource(res.api, res.path, res.collection,
                                                              body, res.created))}


@compute.RULES.handler("compute.routers.getRouterStatus")
def router_status(cloud: Cloud, call: Call) -> dict[str, Any]:
    router = generic.existing(cloud, call, call.path, generic.collection(call))
    asn = (router.body.get("bgp") or {}).get("asn")
    best: list[dict[str, Any]] = []
    statuses = []
    for peer in router.body.get("bgpPeers") or []:
        s = session(cloud, router, peer)
        status: dict[str, Any] = {
            "name": peer["name"],
            "ipAddress": peer.get("ipAddress"),
            "peerIpAddress": peer.get("peerIpAddress"),
            "status": "UP" if s.up else "DOWN",
            "state": s.state,
            "enableIpv4": True,
            "md5AuthEnabled": False,
        }
        if s.tunnel is not None:
            status["linkedVpnTunnel"] = compute.self_link(s.tunnel.path)
        if s.up:
            assert s.remote_router is not None and s.remote_peer is not None
            remote_asn = s.remote_router.body["bgp"]["asn"]
            learned = _routes(
                router,
                s,
                advertised(cloud, s.remote_router, s.remote_peer),
                (str(peer["peerIpAddress"]), remote_asn, s.remote_peer),
            )
            best += learned
            # Simulated seconds, like every duration the emulator reports.
            seconds = int(cloud.clock.simulated(cloud.now() - s.since))
            status.update(
                uptime=_uptime(seconds),
                uptimeSeconds=str(seconds),
                numLearnedRoutes=len(learned),
                advertisedRoutes=_routes(
                    router, s, advertised(cloud, router, peer), (str(peer["ipAddress"]), asn, peer)
                ),
            )
        statuses.append({k: v for k, v in status.items() if v is not None})
    result: dict[str, Any] = {"network": router.body.get("network")}
    if best:
        result["bestRoutes"] = best
        result["bestRoutesForRouter"] = best
    if statuses:
        result["bgpPeerStatus"] = statuses
    return {"kind": "compute#routerStatusResponse", "result": result}
