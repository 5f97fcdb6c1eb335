"""HA VPN: gateways and their tunnels, registered on compute's rules.

A gateway gets two public interface addresses. A tunnel's `status` is worked out on every read
from both ends, as Google's control plane sees them: it is ESTABLISHED only when the peer
gateway has a tunnel back to this one, on the same interface number, with the same shared
secret. The secret is stored (the two ends are compared) but never answered: reads show it
masked, as Google does.

Google also lets a tunnel be deleted while a router interface still links it (the interface
stays; its BGP session goes down), so the tunnel's delete looks past routers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provision_emulator import formats, generic
from provision_emulator.apis import compute, ipam
from provision_emulator.call import Call
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

GATEWAYS = "vpnGateways"
TUNNELS = "vpnTunnels"
EXTERNAL_GATEWAYS = "externalVpnGateways"
ROUTERS = "routers"
INTERFACES = (0, 1)  # an HA VPN gateway has two
MASK = "*************"  # what Google answers in place of a tunnel's shared secret

# (status, detailedStatus) as Google reports them: the enum of VpnTunnel.status, and the texts of
# Cloud VPN's "Interpret tunnel status messages" table (Google documents none for
# AUTHORIZATION_ERROR: that one is the emulator's wording).
ESTABLISHED = ("ESTABLISHED", "Tunnel is up and running.")
NO_PEER = ("FIRST_HANDSHAKE", "Handshake with peer broken for unknown reason. Trying again soon.")
BAD_SECRET = (
    "AUTHORIZATION_ERROR",
    "Authorization error: the peer rejected the shared secret.",
)


# --- gateways -----------------------------------------------------------------------------------


@compute.RULES.on_create(GATEWAYS)
def _gateway(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    if not body.get("network"):
        raise compute.required_field("network")
    body.setdefault("stackType", "IPV4_ONLY")
    body.setdefault("gatewayIpVersion", "IPV4")
    given = body.get("vpnInterfaces") or []
    body["vpnInterfaces"] = [
        {
            **(given[i] if i < len(given) else {}),
            "id": i,
            "ipAddress": ipam.public_address((), "vpnGateway", call.path, body["name"], i),
        }
        for i in INTERFACES
    ]


def interface_ip(gateway: dict[str, Any], interface: Any) -> str | None:
    for iface in gateway.get("vpnInterfaces") or gateway.get("interfaces") or []:
        if iface.get("id", 0) == interface:
            return iface.get("ipAddress")
    return None


@compute.RULES.handler("compute.vpnGateways.getStatus")
def gateway_status(cloud: Cloud, call: Call) -> dict[str, Any]:
    """The tunnels to each peer gateway, and whether both interfaces are covered (Google's
    99.99% redundancy requirement)."""
    gateway = generic.existing(cloud, call, call.path, generic.collection(call))
    by_peer: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for tunnel in _tunnels_of(cloud, gateway):
        body = tunnel.body
        local = body.get("vpnGatewayInterface", 0)
        if body.get("peerGcpGateway"):
            # Two HA VPN gateways pair their interfaces by number.
            key, remote = ("peerGcpGateway", body["peerGcpGateway"]), local
        else:
            key = ("peerExternalGateway", body.get("peerExternalGateway", ""))
            remote = body.get("peerExternalGatewayInterface", 0)
        by_peer.setdefault(key, []).append(
            {
                "localGatewayInterface": local,
                "peerGatewayInterface": remote,
                "tunnelUrl": compute.self_link(tunnel.path),
            }
        )
    connections = []
    for (field, peer), tunnels in by_peer.items():
        covered = {t["localGatewayInterface"] for t in tunnels} >= set(INTERFACES)
        state: dict[str, Any] = {
            "state": "CONNECTION_REDUNDANCY_MET" if covered else "CONNECTION_REDUNDANCY_NOT_MET"
        }
        if not covered:
            state["unsatisfiedReason"] = "INCOMPLETE_TUNNELS_COVERAGE"
        connections.append({field: peer, "tunnels": tunnels, "state": state})
    return {"result": {"vpnConnections": connections} if connections else {}}


def _tunnels_of(cloud: Cloud, gateway: Resource) -> list[Resource]:
    link = compute.self_link(gateway.path)
    return [
        r
        for r in cloud.store.referrers("compute", gateway.path)
        if r.collection == TUNNELS and r.body.get("vpnGateway") == link
    ]


# --- tunnels ------------------------------------------------------------------------------------


@compute.RULES.on_create(TUNNELS)
def _tunnel(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    if not body.get("sharedSecret"):
        raise compute.required_field("sharedSecret")
    body.setdefault("ikeVersion", 2)
    body.setdefault("localTrafficSelector", ["0.0.0.0/0"])
    body.setdefault("remoteTrafficSelector", ["0.0.0.0/0"])
    # Salted by the tunnel: the two ends' hashes say nothing about each other.
    body["sharedSecretHash"] = formats.fingerprint("vpn-secret", call.path, body["sharedSecret"])
    if body.get("vpnGateway"):
        _check_ha_tunnel(cloud, call, body)


def _check_ha_tunnel(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    gateway = cloud.resolve(call, body["vpnGateway"])
    assert gateway is not None  # references are checked before hooks run
    region = compute.region_of(call.path)
    if compute.region_of(gateway.path) != region:
        raise compute.invalid_field(
            "vpnGateway", body["vpnGateway"], f"The VPN gateway must be in region '{region}'."
        )
    interface = body.get("vpnGatewayInterface")
    if interface is None:
        raise compute.required_field("vpnGatewayInterface")
    if interface not in INTERFACES:
        raise compute.invalid_field(
            "vpnGatewayInterface", interface, "An HA VPN gateway has interfaces 0 and 1."
        )
    if body.get("peerIp"):
        raise compute.invalid_field(
            "peerIp", body["peerIp"], "peerIp can be set only for Classic VPN tunnels."
        )
    body["peerIp"] = _peer_address(cloud, call, body, interface)
    router = cloud.resolve(call, str(body.get("router") or ""))
    if router is None:
        raise compute.required_field("router")
    if compute.region_of(router.path) != region:
        raise compute.invalid_field(
            "router", body["router"], f"The router must be in region '{region}'."
        )
    if router.body.get("network") != gateway.body.get("network"):
        raise compute.invalid_field(
            "router", body["router"], "The router must be in the VPN gateway's network."
        )


def _peer_address(cloud: Cloud, call: Call, body: dict[str, Any], interface: int) -> str | None:
    """The peer end's public address: the same interface of a peer HA VPN gateway, or the chosen
    interface of an external one."""
    if body.get("peerGcpGateway"):
        if body.get("peerExternalGateway"):
            raise compute.invalid_field(
                "peerExternalGateway",
                body["peerExternalGateway"],
                "Only one of peerGcpGateway and peerExternalGateway may be set.",
            )
        peer = cloud.resolve(call, body["peerGcpGateway"])
        return interface_ip(peer.body, interface) if peer else None
    if body.get("peerExternalGateway"):
        peer = cloud.resolve(call, body["peerExternalGateway"])
        chosen = body.get("peerExternalGatewayInterface")
        if chosen is None:
            raise compute.required_field("peerExternalGatewayInterface")
        address = interface_ip(peer.body, chosen) if peer else None
        if address is None:
            raise compute.invalid_field(
                "peerExternalGatewayInterface",
                chosen,
                "The external VPN gateway has no interface with this id.",
            )
        return address
    raise compute.required_field("peerGcpGateway")


def peer_tunnel(cloud: Cloud, tunnel: Resource) -> Resource | None:
    """The tunnel on the peer HA VPN gateway that points back at this one on the same interface
    (one with the same secret first, if there are several)."""
    body = tunnel.body
    peer_gateway = compute.stored(cloud, body.get("peerGcpGateway"))
    if peer_gateway is None:
        return None
    candidates = [
        t
        for t in _tunnels_of(cloud, peer_gateway)
        if t.body.get("peerGcpGateway") == body.get("vpnGateway")
        and t.body.get("vpnGatewayInterface") == body.get("vpnGatewayInterface")
    ]
    candidates.sort(key=lambda t: t.body.get("sharedSecret") != body.get("sharedSecret"))
    return candidates[0] if candidates else None


def tunnel_status(cloud: Cloud, tunnel: Resource) -> tuple[str, str]:
    """(status, detailedStatus) of a tunnel, from both of its ends. Nothing answers for an
    external peer gateway here (it stands for a device outside Google), so such a tunnel never
    gets past its first handshake."""
    peer = peer_tunnel(cloud, tunnel)
    if peer is None:
        return NO_PEER
    if peer.body.get("sharedSecret") != tunnel.body.get("sharedSecret"):
        return BAD_SECRET
    return ESTABLISHED


@compute.RULES.on_read(TUNNELS)
def _tunnel_as_read(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    if "sharedSecret" in body:
        body["sharedSecret"] = MASK
    body["status"], body["detailedStatus"] = tunnel_status(cloud, res)
    return body


@compute.RULES.handler("compute.vpnTunnels.delete")
def delete_tunnel(cloud: Cloud, call: Call) -> dict[str, Any]:
    again = generic.replay(cloud, call)
    if again is not None:
        return again
    coll = generic.collection(call)
    res = cloud.store.get("compute", call.path)
    if res is None:
        raise compute.RULES.not_found(call.path, coll)
    generic.refuse_if_busy(cloud, call, call.path)
    users = [r for r in cloud.store.referrers("compute", call.path) if r.collection != ROUTERS]
    if users:
        raise compute.RULES.in_use(res, users[0])
    return generic.commit(cloud, call, coll, call.path, effect="delete")
