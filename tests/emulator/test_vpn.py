"""HA VPN and Cloud Router through google-cloud-compute: a hub (Apigee's side) and a spoke in
another project, two tunnels each way, BGP over them, and what the statuses make of it."""

from __future__ import annotations

import ipaddress

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from .conftest import PROJECT, REGION, Compute

HUB, SPOKE = PROJECT, "proj-spoke"
HUB_ASN, SPOKE_ASN = 64513, 64514
SECRET = "s3cr3t-shared-by-both-sides"
APIGEE_RANGES = ["10.0.0.0/22", "10.1.0.0/28"]  # Apigee's peering ranges, advertised by the hub
ESTABLISHED = "Tunnel is up and running."
NO_PEER = "Handshake with peer broken for unknown reason. Trying again soon."


def link(project: str, path: str) -> str:
    return f"https://www.googleapis.com/compute/v1/projects/{project}/{path}"


def network(compute: Compute, project: str, name: str, cidr: str) -> None:
    compute.wait(
        compute.networks.insert(
            project=project,
            network_resource=compute_v1.Network(name=name, auto_create_subnetworks=False),
        ),
        project,
    )
    subnet = compute_v1.Subnetwork(
        name=f"{name}-subnet", ip_cidr_range=cidr, network=f"global/networks/{name}"
    )
    compute.wait(
        compute.subnetworks.insert(project=project, region=REGION, subnetwork_resource=subnet),
        project,
    )


def gateway(compute: Compute, project: str, name: str) -> compute_v1.VpnGateway:
    body = compute_v1.VpnGateway(name=f"{name}-gw", network=f"global/networks/{name}")
    compute.wait(
        compute.vpn_gateways.insert(project=project, region=REGION, vpn_gateway_resource=body),
        project,
    )
    return compute.vpn_gateways.get(project=project, region=REGION, vpn_gateway=f"{name}-gw")


def router(compute: Compute, project: str, name: str, bgp: compute_v1.RouterBgp) -> None:
    body = compute_v1.Router(name=f"{name}-router", network=f"global/networks/{name}", bgp=bgp)
    compute.wait(
        compute.routers.insert(project=project, region=REGION, router_resource=body), project
    )


def tunnel(
    compute: Compute, project: str, side: str, peer: str, interface: int, secret: str = SECRET
) -> None:
    peer_project = SPOKE if peer == "spoke" else HUB
    body = compute_v1.VpnTunnel(
        name=f"{side}-t{interface}",
        vpn_gateway=f"regions/{REGION}/vpnGateways/{side}-gw",
        vpn_gateway_interface=interface,
        peer_gcp_gateway=link(peer_project, f"regions/{REGION}/vpnGateways/{peer}-gw"),
        shared_secret=secret,
        router=f"regions/{REGION}/routers/{side}-router",
        ike_version=2,
    )
    compute.wait(
        compute.vpn_tunnels.insert(project=project, region=REGION, vpn_tunnel_resource=body),
        project,
    )


def get_tunnel(compute: Compute, project: str, name: str) -> compute_v1.VpnTunnel:
    return compute.vpn_tunnels.get(project=project, region=REGION, vpn_tunnel=name)


def add_session(
    compute: Compute,
    project: str,
    side: str,
    interface: int,
    ip_range: str,
    peer_ip: str,
    peer_asn: int,
) -> None:
    """A router interface on the side's tunnel and its BGP peer, as a client adds them: read
    the router, append, and patch both lists back whole."""
    name = f"{side}-router"
    current = compute.routers.get(project=project, region=REGION, router=name)
    interfaces = [*current.interfaces]
    peers = [*current.bgp_peers]
    interfaces.append(
        compute_v1.RouterInterface(
            name=f"if-{interface}",
            ip_range=ip_range,
            linked_vpn_tunnel=link(project, f"regions/{REGION}/vpnTunnels/{side}-t{interface}"),
        )
    )
    peers.append(
        compute_v1.RouterBgpPeer(
            name=f"peer-{interface}",
            interface_name=f"if-{interface}",
            peer_ip_address=peer_ip,
            peer_asn=peer_asn,
        )
    )
    patch = compute_v1.Router(interfaces=interfaces, bgp_peers=peers)
    compute.wait(
        compute.routers.patch(project=project, region=REGION, router=name, router_resource=patch),
        project,
    )


def router_status(compute: Compute, project: str, side: str) -> compute_v1.RouterStatus:
    return compute.routers.get_router_status(
        project=project, region=REGION, router=f"{side}-router"
    ).result


@pytest.fixture
def sides(compute: Compute) -> Compute:
    """Hub and spoke networks, HA VPN gateways and routers: the hub advertises its subnets and
    Apigee's ranges, the spoke its subnets (the default)."""
    network(compute, HUB, "hub", "10.2.0.0/24")
    network(compute, SPOKE, "spoke", "10.50.0.0/24")
    gateway(compute, HUB, "hub")
    gateway(compute, SPOKE, "spoke")
    hub_bgp = compute_v1.RouterBgp(
        asn=HUB_ASN,
        advertise_mode="CUSTOM",
        advertised_groups=["ALL_SUBNETS"],
        advertised_ip_ranges=[compute_v1.RouterAdvertisedIpRange(range_=r) for r in APIGEE_RANGES],
    )
    router(compute, HUB, "hub", hub_bgp)
    router(compute, SPOKE, "spoke", compute_v1.RouterBgp(asn=SPOKE_ASN))
    return compute


def tunnels(compute: Compute, hub_secret: str = SECRET, spoke_secret: str = SECRET) -> None:
    for interface in (0, 1):
        tunnel(compute, HUB, "hub", "spoke", interface, hub_secret)
        tunnel(compute, SPOKE, "spoke", "hub", interface, spoke_secret)


def sessions(compute: Compute, spoke_asn: int = SPOKE_ASN, spoke_peer_ip: str = ".2") -> None:
    """BGP on both tunnels: 169.254.0.1/30 <-> .2 and 169.254.1.1/30 <-> .2."""
    for interface in (0, 1):
        net = f"169.254.{interface}"
        add_session(compute, HUB, "hub", interface, f"{net}.1/30", f"{net}.2", spoke_asn)
        add_session(
            compute, SPOKE, "spoke", interface, f"{net}{spoke_peer_ip}/30", f"{net}.1", HUB_ASN
        )


# --- gateways and tunnels -------------------------------------------------------------------


def test_gateway_has_two_public_interfaces(compute: Compute) -> None:
    network(compute, HUB, "hub", "10.2.0.0/24")
    gw = gateway(compute, HUB, "hub")
    assert [i.id for i in gw.vpn_interfaces] == [0, 1]
    addresses = [ipaddress.ip_address(i.ip_address) for i in gw.vpn_interfaces]
    assert len(set(addresses)) == 2 and all(a.is_global for a in addresses)
    assert gw.stack_type == "IPV4_ONLY"
    assert gw.network == link(HUB, "global/networks/hub")
    again = compute.vpn_gateways.get(project=HUB, region=REGION, vpn_gateway="hub-gw")
    assert [i.ip_address for i in again.vpn_interfaces] == [str(a) for a in addresses]


def test_tunnel_pair_with_the_same_secret_is_established(sides: Compute) -> None:
    tunnels(sides)
    for project, side in ((HUB, "hub"), (SPOKE, "spoke")):
        for interface in (0, 1):
            got = get_tunnel(sides, project, f"{side}-t{interface}")
            assert (got.status, got.detailed_status) == ("ESTABLISHED", ESTABLISHED)
    spoke_gw = sides.vpn_gateways.get(project=SPOKE, region=REGION, vpn_gateway="spoke-gw")
    assert get_tunnel(sides, HUB, "hub-t1").peer_ip == spoke_gw.vpn_interfaces[1].ip_address

    status = sides.vpn_gateways.get_status(project=HUB, region=REGION, vpn_gateway="hub-gw")
    [connection] = status.result.vpn_connections
    assert connection.peer_gcp_gateway == link(SPOKE, f"regions/{REGION}/vpnGateways/spoke-gw")
    assert connection.state.state == "CONNECTION_REDUNDANCY_MET"
    assert sorted(t.local_gateway_interface for t in connection.tunnels) == [0, 1]


def test_a_missing_peer_tunnel_leaves_the_handshake_failing(sides: Compute) -> None:
    tunnel(sides, HUB, "hub", "spoke", 0)
    tunnel(sides, HUB, "hub", "spoke", 1)
    got = get_tunnel(sides, HUB, "hub-t0")
    assert (got.status, got.detailed_status) == ("FIRST_HANDSHAKE", NO_PEER)

    tunnel(sides, SPOKE, "spoke", "hub", 0)  # only interface 0 answers
    assert get_tunnel(sides, HUB, "hub-t0").status == "ESTABLISHED"
    assert get_tunnel(sides, HUB, "hub-t1").status == "FIRST_HANDSHAKE"
    status = sides.vpn_gateways.get_status(project=SPOKE, region=REGION, vpn_gateway="spoke-gw")
    state = status.result.vpn_connections[0].state
    assert state.state == "CONNECTION_REDUNDANCY_NOT_MET"
    assert state.unsatisfied_reason == "INCOMPLETE_TUNNELS_COVERAGE"

    # A tunnel pointing back on the other interface is no peer of interface 0.
    sides.wait(sides.vpn_tunnels.delete(project=SPOKE, region=REGION, vpn_tunnel="spoke-t0"), SPOKE)
    tunnel(sides, SPOKE, "spoke", "hub", 1)
    assert get_tunnel(sides, HUB, "hub-t0").status == "FIRST_HANDSHAKE"
    assert get_tunnel(sides, HUB, "hub-t1").status == "ESTABLISHED"


def test_different_secrets_are_an_authorization_error(sides: Compute) -> None:
    tunnels(sides, spoke_secret="not-the-same")
    for project, name in ((HUB, "hub-t0"), (SPOKE, "spoke-t1")):
        got = get_tunnel(sides, project, name)
        assert got.status == "AUTHORIZATION_ERROR"
        assert got.detailed_status


def test_the_shared_secret_is_never_answered(sides: Compute, emulator) -> None:
    tunnels(sides)
    got = get_tunnel(sides, HUB, "hub-t0")
    assert got.shared_secret == "*************"
    assert got.shared_secret_hash
    listed = sides.vpn_tunnels.list(project=HUB, region=REGION)
    assert {t.shared_secret for t in listed} == {"*************"}
    aggregated = sides.vpn_tunnels.aggregated_list(project=HUB)
    for _, scoped in aggregated:
        assert all(t.shared_secret == "*************" for t in scoped.vpn_tunnels)
    # Kept all the same: the two ends still agree.
    assert got.status == "ESTABLISHED"


def test_an_ha_tunnel_needs_a_router_of_its_gateway_network(sides: Compute) -> None:
    body = {
        "name": "t",
        "vpn_gateway": f"regions/{REGION}/vpnGateways/hub-gw",
        "vpn_gateway_interface": 0,
        "peer_gcp_gateway": link(SPOKE, f"regions/{REGION}/vpnGateways/spoke-gw"),
        "shared_secret": SECRET,
    }
    with pytest.raises(exceptions.BadRequest, match=r"resource\.router"):
        sides.vpn_tunnels.insert(project=HUB, region=REGION, vpn_tunnel_resource=body)
    network(sides, HUB, "other", "10.9.0.0/24")
    router(sides, HUB, "other", compute_v1.RouterBgp(asn=64600))
    body["router"] = f"regions/{REGION}/routers/other-router"
    with pytest.raises(exceptions.BadRequest, match="network"):
        sides.vpn_tunnels.insert(project=HUB, region=REGION, vpn_tunnel_resource=body)
    body.update(router=f"regions/{REGION}/routers/hub-router", vpn_gateway_interface=2)
    with pytest.raises(exceptions.BadRequest, match="vpnGatewayInterface"):
        sides.vpn_tunnels.insert(project=HUB, region=REGION, vpn_tunnel_resource=body)


# --- Cloud Router and BGP -------------------------------------------------------------------


def test_bgp_is_up_when_both_sides_mirror_each_other(sides: Compute) -> None:
    tunnels(sides)
    sessions(sides)
    for project, side in ((HUB, "hub"), (SPOKE, "spoke")):
        status = router_status(sides, project, side)
        assert [(p.name, p.status, p.state) for p in status.bgp_peer_status] == [
            ("peer-0", "UP", "Established"),
            ("peer-1", "UP", "Established"),
        ]
    spoke = router_status(sides, SPOKE, "spoke")
    peer0 = spoke.bgp_peer_status[0]
    assert (peer0.ip_address, peer0.peer_ip_address) == ("169.254.0.2", "169.254.0.1")
    assert peer0.linked_vpn_tunnel == link(SPOKE, f"regions/{REGION}/vpnTunnels/spoke-t0")
    assert int(peer0.uptime_seconds) >= 0 and peer0.uptime

    # The spoke learns the hub's subnet and Apigee's ranges over each tunnel.
    learned = {(r.dest_range, r.next_hop_ip) for r in spoke.best_routes}
    for prefix in ["10.2.0.0/24", *APIGEE_RANGES]:
        assert {(prefix, "169.254.0.1"), (prefix, "169.254.1.1")} <= learned
    route = next(r for r in spoke.best_routes if r.dest_range == "10.0.0.0/22")
    assert route.route_type == "BGP"
    assert route.next_hop_vpn_tunnel.endswith(f"/regions/{REGION}/vpnTunnels/spoke-t0")
    assert route.network == link(SPOKE, "global/networks/spoke")
    assert list(route.as_paths[0].as_lists) == [HUB_ASN]
    assert peer0.num_learned_routes == 3

    # The hub learns the spoke's subnet only: the spoke advertises in the default mode.
    hub = router_status(sides, HUB, "hub")
    assert {r.dest_range for r in hub.best_routes} == {"10.50.0.0/24"}
    advertised = {r.dest_range for r in hub.bgp_peer_status[0].advertised_routes}
    assert advertised == {"10.2.0.0/24", *APIGEE_RANGES}


def test_bgp_is_down_on_an_asn_mismatch(sides: Compute) -> None:
    tunnels(sides)
    sessions(sides, spoke_asn=64999)  # the hub expects the wrong ASN of the spoke
    for project, side in ((HUB, "hub"), (SPOKE, "spoke")):
        status = router_status(sides, project, side)
        assert {p.status for p in status.bgp_peer_status} == {"DOWN"}
        assert not status.best_routes


def test_bgp_is_down_when_the_addresses_do_not_mirror(sides: Compute) -> None:
    tunnels(sides)
    # The spoke's interfaces take .2 of their /30 but say the hub is at .1 of another one.
    for interface in (0, 1):
        net = f"169.254.{interface}"
        add_session(sides, HUB, "hub", interface, f"{net}.1/30", f"{net}.2", SPOKE_ASN)
    add_session(sides, SPOKE, "spoke", 0, "169.254.0.2/30", "169.254.0.1", HUB_ASN)
    add_session(sides, SPOKE, "spoke", 1, "169.254.9.2/30", "169.254.9.1", HUB_ASN)
    statuses = router_status(sides, HUB, "hub").bgp_peer_status
    assert [(p.name, p.status) for p in statuses] == [("peer-0", "UP"), ("peer-1", "DOWN")]


def test_bgp_is_down_while_the_tunnel_is(sides: Compute) -> None:
    tunnels(sides, spoke_secret="not-the-same")
    sessions(sides)
    status = router_status(sides, HUB, "hub")
    assert [(p.status, p.state) for p in status.bgp_peer_status] == [("DOWN", "Idle")] * 2


def test_router_patch_replaces_the_lists_it_sends(sides: Compute) -> None:
    tunnels(sides)
    sessions(sides)  # each add read the router and sent both lists back whole
    got = sides.routers.get(project=HUB, region=REGION, router="hub-router")
    assert [i.name for i in got.interfaces] == ["if-0", "if-1"]
    assert [(p.name, p.ip_address, p.enable) for p in got.bgp_peers] == [
        ("peer-0", "169.254.0.1", "TRUE"),
        ("peer-1", "169.254.1.1", "TRUE"),
    ]
    assert got.bgp.asn == HUB_ASN and list(got.bgp.advertised_groups) == ["ALL_SUBNETS"]

    # A patch of one field leaves the lists alone.
    patch = compute_v1.Router(description="hub side")
    sides.wait(
        sides.routers.patch(project=HUB, region=REGION, router="hub-router", router_resource=patch)
    )
    got = sides.routers.get(project=HUB, region=REGION, router="hub-router")
    assert got.description == "hub side" and len(got.interfaces) == len(got.bgp_peers) == 2

    # Lists sent are taken whole: dropping an interface a peer still uses is refused ...
    patch = compute_v1.Router(interfaces=[got.interfaces[0]])
    with pytest.raises(exceptions.BadRequest, match="interfaceName"):
        sides.routers.patch(project=HUB, region=REGION, router="hub-router", router_resource=patch)
    # ... and dropping both the interface and its peer removes them.
    patch = compute_v1.Router(interfaces=[got.interfaces[0]], bgp_peers=[got.bgp_peers[0]])
    sides.wait(
        sides.routers.patch(project=HUB, region=REGION, router="hub-router", router_resource=patch)
    )
    got = sides.routers.get(project=HUB, region=REGION, router="hub-router")
    assert [i.name for i in got.interfaces] == ["if-0"]
    assert [p.name for p in got.bgp_peers] == ["peer-0"]


def test_router_contents_are_checked(sides: Compute) -> None:
    tunnels(sides)

    def patch(**fields) -> None:
        sides.routers.patch(project=HUB, region=REGION, router="hub-router", router_resource=fields)

    tunnel0 = link(HUB, f"regions/{REGION}/vpnTunnels/hub-t0")
    with pytest.raises(exceptions.BadRequest, match="link-local"):
        patch(interfaces=[{"name": "i", "ip_range": "10.0.0.1/30", "linked_vpn_tunnel": tunnel0}])
    spoke_tunnel = link(SPOKE, f"regions/{REGION}/vpnTunnels/spoke-t0")
    with pytest.raises(exceptions.BadRequest, match="does not use this router"):
        patch(
            interfaces=[
                {"name": "i", "ip_range": "169.254.0.1/30", "linked_vpn_tunnel": spoke_tunnel}
            ]
        )
    interface = {"name": "i", "ip_range": "169.254.0.1/30", "linked_vpn_tunnel": tunnel0}
    outside = {"name": "p", "interface_name": "i", "peer_ip_address": "169.254.7.2"}
    with pytest.raises(exceptions.BadRequest, match="peerIpAddress"):
        patch(interfaces=[interface], bgp_peers=[{**outside, "peer_asn": SPOKE_ASN}])
    with pytest.raises(exceptions.BadRequest, match="RFC6996"):
        sides.routers.insert(
            project=HUB,
            region=REGION,
            router_resource={"name": "r2", "network": "global/networks/hub", "bgp": {"asn": 15169}},
        )


def test_a_tunnel_may_go_while_an_interface_links_it_but_a_router_may_not(
    sides: Compute,
) -> None:
    tunnels(sides)
    sessions(sides)
    with pytest.raises(exceptions.BadRequest) as caught:
        sides.routers.delete(project=HUB, region=REGION, router="hub-router")
    assert caught.value.errors[0]["reason"] == "resourceInUseByAnotherResource"
    sides.wait(sides.vpn_tunnels.delete(project=HUB, region=REGION, vpn_tunnel="hub-t0"))
    # The interface stays; its session and the spoke's mirror go down.
    got = sides.routers.get(project=HUB, region=REGION, router="hub-router")
    assert len(got.interfaces) == 2
    spoke = router_status(sides, SPOKE, "spoke").bgp_peer_status
    assert [(p.name, p.status) for p in spoke] == [("peer-0", "DOWN"), ("peer-1", "UP")]
    assert get_tunnel(sides, SPOKE, "spoke-t0").status == "FIRST_HANDSHAKE"


def test_a_network_takes_five_routers_per_region_and_the_sixth_fails_in_its_operation(
    compute: Compute,
) -> None:
    network(compute, HUB, "hub", "10.10.0.0/24")

    def insert(i: int) -> compute_v1.Operation:
        return compute.wait(compute.routers.insert(
            project=HUB, region=REGION, router_resource=compute_v1.Router(
                name=f"hub{i}-router", network="global/networks/hub",
                bgp=compute_v1.RouterBgp(asn=64600 + i))), HUB)

    assert all(not insert(i).error.errors for i in range(5))
    done = insert(5)
    assert done.error.errors[0].code == "QUOTA_EXCEEDED"
    assert "Limit: 5.0 in region" in done.error.errors[0].message
    with pytest.raises(exceptions.NotFound):
        compute.routers.get(project=HUB, region=REGION, router="hub5-router")


def test_a_router_takes_128_bgp_peers(compute: Compute) -> None:
    network(compute, HUB, "hub", "10.10.0.0/24")
    router(compute, HUB, "hub", compute_v1.RouterBgp(asn=HUB_ASN))

    def peers(count: int) -> compute_v1.Router:
        ranges = [ipaddress.ip_network("169.254.0.0/16").subnets(new_prefix=30)]
        nets = [next(ranges[0]) for _ in range(count)]
        return compute_v1.Router(
            interfaces=[compute_v1.RouterInterface(name=f"if{i}", ip_range=f"{n[1]}/30")
                        for i, n in enumerate(nets)],
            bgp_peers=[compute_v1.RouterBgpPeer(name=f"peer{i}", interface_name=f"if{i}",
                                                ip_address=str(n[1]), peer_ip_address=str(n[2]),
                                                peer_asn=SPOKE_ASN)
                       for i, n in enumerate(nets)])

    with pytest.raises(exceptions.BadRequest, match="at most 128 BGP peers"):
        compute.routers.patch(project=HUB, region=REGION, router="hub-router",
                              router_resource=peers(129))
    compute.wait(compute.routers.patch(project=HUB, region=REGION, router="hub-router",
                                       router_resource=peers(128)), HUB)
    live = compute.routers.get(project=HUB, region=REGION, router="hub-router")
    assert len(live.bgp_peers) == 128
