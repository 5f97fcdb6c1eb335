"""The wheel: plans/vpn-wheel.yaml applied on the emulator with 3 spokes, every pair's tunnels
ESTABLISHED and routes learned both ways, verified, re-applied as a no-op; a 4th spoke appended
makes only the new pairs' resources; with 6 spokes it applies and destroys clean."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import orchestrator
from provision_emulator import Emulator

from .conftest import (
    applied,
    check_destroy_leaves_nothing,
    check_every_step_is_present,
    check_reapply_makes_no_mutating_request,
    compute,
)

PLAN = Path(__file__).parents[2] / "plans" / "vpn-wheel.yaml"
REGION = "europe-west1"
APIGEE = "apigee-wheel-project"
APIGEE_RANGES = {"10.0.0.0/22", "10.1.0.0/28"}
SPOKES = [
    {"name": "orders", "project": "orders-wheel-project", "subnet": "10.20.0.0/24",
     "backend": "10.20.0.10", "asn": 64601, "advertise": []},
    {"name": "billing", "project": "billing-wheel-project", "subnet": "10.21.0.0/24",
     "backend": "10.21.0.10", "asn": 64602, "advertise": []},
    {"name": "stock", "project": "stock-wheel-project", "subnet": "10.22.0.0/24",
     "backend": "10.22.0.10", "asn": 64603, "advertise": []},
]


def spoke(name: str, n: int) -> dict[str, Any]:
    return {"name": name, "project": f"{name}-wheel-project", "subnet": f"10.{30 + n}.0.0/24",
            "backend": f"10.{30 + n}.0.10", "asn": 64700 + n, "advertise": []}


def steps(members: int) -> int:
    """APIs 3 + per member 5 (API, network, subnet, gateway, router) + per pair 12 (two links,
    each a tunnel, an interface and a peer on both sides) + per spoke 3 (address, firewall,
    record) + Apigee 12 (its ranges, private services access and routes, organization,
    instance, environment, group, attachments, zone, DNS peering)."""
    pairs = members * (members - 1) // 2
    return 3 + 5 * members + 12 * pairs + 3 * (members - 1) + 12


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, Any]]:
    with applied(PLAN, tmp_path_factory.mktemp("wheel")) as pair:
        yield pair


def routers(emu: Emulator, members: list[dict[str, Any]]) -> dict[str, Any]:
    client = compute(emu, "RoutersClient")
    return {m["name"]: client.get_router_status(project=m["project"], region=REGION,
                                                router=f"{m['name']}-router").result
            for m in members}


def members() -> list[dict[str, Any]]:
    return [{"name": "apigee", "project": APIGEE, "subnet": "10.2.0.0/24"}, *SPOKES]


def test_every_step_is_present(cloud) -> None:
    check_every_step_is_present(cloud[1], steps(4))
    assert steps(4) == 116


def test_every_pair_is_meshed_with_established_tunnels_and_sessions_up(cloud) -> None:
    emu, _ = cloud
    tunnels = compute(emu, "VpnTunnelsClient")
    found = [t for m in members() for t in tunnels.list(project=m["project"], region=REGION)]
    assert len(found) == 2 * 4 * 3  # 2·N·(N-1)
    assert {t.status for t in found} == {"ESTABLISHED"}
    for name, status in routers(emu, members()).items():
        peers = status.bgp_peer_status
        assert len(peers) == 2 * 3, name  # two sessions to each other member
        assert {p.status for p in peers} == {"UP"}, name


def test_every_member_learns_the_others_and_apigee_every_spoke(cloud) -> None:
    emu, _ = cloud
    learned = {name: {r.dest_range for r in status.best_routes}
               for name, status in routers(emu, members()).items()}
    for m in SPOKES:
        # Apigee's ranges come from Apigee's member directly: no hub in between.
        assert learned[m["name"]] >= APIGEE_RANGES, m["name"]
        assert {s["subnet"] for s in SPOKES if s is not m} <= learned[m["name"]]
        assert m["subnet"] in learned["apigee"]


def test_link_local_ranges_are_distinct_and_mirror_each_other(cloud) -> None:
    emu, _ = cloud
    client = compute(emu, "RoutersClient")
    blocks = []
    for m in members():
        router = client.get(project=m["project"], region=REGION, router=f"{m['name']}-router")
        for iface in router.interfaces:
            blocks.append(ipaddress.ip_interface(iface.ip_range).network)
        for peer in router.bgp_peers:
            mine = next(i for i in router.interfaces if i.name == peer.interface_name)
            assert ipaddress.ip_address(peer.peer_ip_address) in ipaddress.ip_interface(
                mine.ip_range).network
    assert len(blocks) == 2 * len(set(blocks)) == 2 * 12  # each /30 on both ends, once


def test_verify_finds_every_spoke_reachable(cloud) -> None:
    report = cloud[1].verify()
    assert report.ok and len(report.paths) == 3
    for path in report.paths:
        assert {h.name: h.status for h in path.hops if h.status != "ok"} == {
            "reachability": "warning"}  # nothing runs at the reserved backend address


def test_reapply_makes_no_mutating_request(cloud) -> None:
    check_reapply_makes_no_mutating_request(*cloud)


def test_a_fourth_spoke_adds_only_its_pairs(tmp_path: Path) -> None:
    grown = [*SPOKES, spoke("stock2", 3)]
    with Emulator() as emu:
        def apply(spokes: list[dict[str, Any]]) -> Any:
            with orchestrator.load(PLAN, emulator=emu, state_dir=tmp_path / ".provision",
                                   vars={"spokes": spokes}) as dep:
                result = dep.apply()
                assert result.ok, [(f.step, f.message) for f in result.failures]
                return result

        apply(SPOKES)
        before = len(emu.requests())
        result = apply(grown)
        made = [r for r in emu.requests()[before:] if r["mutating"]]
        changed = {s: a for s, a in result.actions.items() if a != "noop"}
        # Every new step names the new member; nothing else is created, changed or replaced.
        assert set(changed.values()) == {"create"}
        assert all("stock2" in s for s in changed), changed
        assert len(changed) == 5 + 3 + 12 * 4  # the member, its spoke parts, 4 new pairs
        # The request log: inserts, and patches of routers gaining interfaces and peers.
        assert {r["method"] for r in made} <= {
            "compute.networks.insert", "compute.subnetworks.insert",
            "compute.vpnGateways.insert", "compute.routers.insert", "compute.routers.patch",
            "compute.vpnTunnels.insert", "compute.addresses.insert", "compute.firewalls.insert",
            "dns.changes.create", "serviceusage.services.enable"}
        statuses = routers(emu, [*members(), {"name": "stock2", "project": "stock2-wheel-project"}])
        assert {p.status for s in statuses.values() for p in s.bgp_peer_status} == {"UP"}
        assert all(len(s.bgp_peer_status) == 2 * 4 for s in statuses.values())


@pytest.mark.slow
def test_six_spokes_apply_and_destroy_clean(tmp_path: Path) -> None:
    six = [*SPOKES, *(spoke(f"extra{n}", n) for n in range(3))]
    with Emulator() as emu, orchestrator.load(
            PLAN, emulator=emu, state_dir=tmp_path / ".provision", vars={"spokes": six}) as dep:
        result = dep.apply()
        assert result.ok, [(f.step, f.message) for f in result.failures]
        check_every_step_is_present(dep, steps(7))
        status = routers(emu, [{"name": "apigee", "project": APIGEE}])["apigee"]
        assert len(status.bgp_peer_status) == 2 * 6
        assert {p.status for p in status.bgp_peer_status} == {"UP"}
        # Every router holds all its interfaces and peers, however many steps patched it at once.
        client = compute(emu, "RoutersClient")
        for member in [{"name": "apigee", "project": APIGEE}, *six]:
            router = client.get(project=member["project"], region=REGION,
                                router=f"{member['name']}-router")
            assert len(router.interfaces) == len(router.bgp_peers) == 2 * 6, member["name"]
        before = len(emu.requests())
        check_destroy_leaves_nothing(emu, dep, (APIGEE, *(s["project"] for s in six)))
        # Removing them, the steps ready at once share a router's patch: far fewer patches than
        # the 168 interfaces and peers.
        patches = [r for r in emu.requests()[before:] if r["method"] == "compute.routers.patch"]
        assert 0 < len(patches) < 168 // 2
