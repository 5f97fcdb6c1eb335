"""Architecture B end to end: plans/vpn-hub.yaml applied on the emulator, the VPN and BGP
wiring checked with the real client libraries, re-applied as a no-op, destroyed clean; and
the two ways the two sides can disagree (shared secret, /30s), which fail the steps that wait
on them at their deadline with Google's status, and leave the rest recorded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, dns

import orchestrator
from provision_emulator import Emulator

from .conftest import (
    applied,
    check_destroy_leaves_nothing,
    check_every_step_is_present,
    check_reapply_makes_no_mutating_request,
    compute,
    leftovers,
)

PLAN = Path(__file__).parents[2] / "plans" / "vpn-hub.yaml"
SECRET = (PLAN.parent / "demo-vpn" / "shared-secret").read_text().strip()
HUB = "apigee-hub-project"
SPOKE = "backend-spoke-project"
REGION = "europe-west1"
APIGEE_RANGES = {"10.0.0.0/22", "10.1.0.0/28"}
STEPS = 40



def router_status(emu: Emulator, project: str, router: str) -> compute_v1.RouterStatus:
    return compute(emu, "RoutersClient").get_router_status(
        project=project, region=REGION, router=router).result



def variant(tmp_path: Path, text: str) -> Path:
    """A changed copy of the plan, its demo secret still found where the plan keeps it."""
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace("file: demo-vpn/", f"file: {PLAN.parent}/demo-vpn/"))
    return path


def step_block(text: str, step_id: str) -> tuple[int, int]:
    """Where one step's lines are in the plan's text."""
    start = text.index(f"  - id: {step_id}\n")
    end = text.find("\n  - ", start + 1)
    return start, end


def edit_step(text: str, step_id: str, old: str, new: str) -> str:
    start, end = step_block(text, step_id)
    block = text[start:end]
    assert old in block, (step_id, old)
    return text[:start] + block.replace(old, new) + text[end:]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, object]]:
    with applied(PLAN, tmp_path_factory.mktemp("vpn")) as pair:
        yield pair


def test_every_step_is_present(cloud) -> None:
    check_every_step_is_present(cloud[1], STEPS)


def test_all_four_tunnels_are_established(cloud) -> None:
    emu, _ = cloud
    tunnels = compute(emu, "VpnTunnelsClient")
    for project, prefix in ((HUB, "hub-to-spoke"), (SPOKE, "spoke-to-hub")):
        for i in (0, 1):
            tunnel = tunnels.get(project=project, region=REGION, vpn_tunnel=f"{prefix}-{i}")
            assert tunnel.status == "ESTABLISHED", tunnel.detailed_status
            assert tunnel.vpn_gateway_interface == i
            assert SECRET not in tunnel.shared_secret


def test_bgp_sessions_are_up_and_the_spoke_learns_apigee_ranges(cloud) -> None:
    emu, _ = cloud
    spoke = router_status(emu, SPOKE, "spoke-router")
    hub = router_status(emu, HUB, "hub-router")
    assert {(p.name, p.status) for p in spoke.bgp_peer_status} == {("hub-0", "UP"), ("hub-1", "UP")}
    assert {(p.name, p.status) for p in hub.bgp_peer_status} == {
        ("spoke-0", "UP"), ("spoke-1", "UP")}
    learned = {r.dest_range for r in spoke.best_routes}
    # Apigee's peering ranges by custom advertisement, the hub's subnet by ALL_SUBNETS.
    assert APIGEE_RANGES | {"10.2.0.0/24"} <= learned
    assert {r.dest_range for r in hub.best_routes} == {"10.20.0.0/24"}
    # Over both tunnels: each range has a route through each.
    assert len({r.next_hop_vpn_tunnel for r in spoke.best_routes}) == 2


def test_each_router_holds_the_interfaces_and_peers_of_its_steps(cloud) -> None:
    emu, dep = cloud
    router = compute(emu, "RoutersClient").get(project=HUB, region=REGION, router="hub-router")
    # In the order their steps ran: each added its own beside the other's.
    assert {(i.name, i.ip_range) for i in router.interfaces} == {
        ("to-spoke-0", "169.254.0.1/30"), ("to-spoke-1", "169.254.1.1/30")}
    assert {(p.name, p.interface_name, p.peer_ip_address, p.peer_asn)
            for p in router.bgp_peers} == {
        ("spoke-0", "to-spoke-0", "169.254.0.2", 64514),
        ("spoke-1", "to-spoke-1", "169.254.1.2", 64514)}
    assert dep.outputs()["hub-peer-0"]["session"]["status"] == "UP"


def test_apigee_peering_exports_the_routes_learned_over_vpn(cloud) -> None:
    emu, _ = cloud
    network = compute(emu, "NetworksClient").get(project=HUB, network="hub-vpc")
    [peering] = [p for p in network.peerings if p.name == "servicenetworking-googleapis-com"]
    assert peering.export_custom_routes and not peering.import_custom_routes


def test_spoke_firewall_lets_apigee_in(cloud) -> None:
    emu, _ = cloud
    rule = compute(emu, "FirewallsClient").get(project=SPOKE, firewall="allow-apigee")
    assert set(rule.source_ranges) == APIGEE_RANGES
    assert rule.network.endswith(f"projects/{SPOKE}/global/networks/spoke-vpc")


def test_runtime_resolves_the_spoke_backend_through_the_hub(cloud) -> None:
    emu, dep = cloud
    client = dns.Client(project=HUB, credentials=AnonymousCredentials(),
                        client_options=ClientOptions(api_endpoint=f"{emu.url}/dns"))
    records = client.zone("spoke-internal").list_resource_record_sets()
    [record] = [r for r in records if r.record_type == "A"]
    assert (record.name, record.rrdatas) == ("api.spoke.internal.example.com.", ["10.20.0.10"])
    outputs = dep.outputs()
    assert outputs["apigee-dns-peering"]["dnsSuffix"] == "spoke.internal.example.com."


def test_a_router_update_keeps_the_interfaces_and_peers_its_steps_made(cloud, tmp_path) -> None:
    emu, dep = cloud
    wider = PLAN.read_text().replace(
        "          - {range: 10.1.0.0/28, description: Apigee support}\n",
        "          - {range: 10.1.0.0/28, description: Apigee support}\n"
        "          - {range: 10.3.0.0/24, description: another hub range}\n",
    )
    before = len(emu.requests())
    changed = orchestrator.load(variant(tmp_path, wider), emulator=emu, ledger=dep.ledger_location)
    result = changed.apply()
    changed.close()
    assert result.ok, result.failures
    assert {s for s, a in result.actions.items() if a != "noop"} == {"hub-router"}
    mutations = [r["method"] for r in emu.requests()[before:] if r["mutating"]]
    assert mutations == ["compute.routers.patch"]
    router = compute(emu, "RoutersClient").get(project=HUB, region=REGION, router="hub-router")
    assert len(router.interfaces) == len(router.bgp_peers) == 2
    assert "10.3.0.0/24" in {r.dest_range for r in router_status(emu, SPOKE, "spoke-router")
                             .best_routes}
    assert dep.apply().ok  # back to the plan as written


def test_a_new_shared_secret_replaces_the_tunnels_and_the_sessions_come_back(
    cloud, tmp_path: Path,
) -> None:
    emu, dep = cloud
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.read_text().replace("file: demo-vpn/shared-secret", f"file: {secret}"))

    def apply() -> dict[str, str]:
        rotated = orchestrator.load(plan, emulator=emu,
                                    ledger=dep.ledger_location)
        result = rotated.apply()
        rotated.close()
        assert result.ok, result.failures
        return {s: a for s, a in result.actions.items() if a != "noop"}

    assert apply() == {}  # the same value from another file is the same secret
    secret.write_text("a-rotated-secret")
    tunnels = {"hub-tunnel-0", "hub-tunnel-1", "spoke-tunnel-0", "spoke-tunnel-1"}
    assert apply() == dict.fromkeys(tunnels, "replace")
    spoke = router_status(emu, SPOKE, "spoke-router")
    assert {p.status for p in spoke.bgp_peer_status} == {"UP"}
    assert {r.dest_range for r in spoke.best_routes} >= APIGEE_RANGES
    secret.write_text(SECRET)
    assert apply() == dict.fromkeys(tunnels, "replace")


def test_reapply_makes_no_mutating_request(cloud) -> None:
    check_reapply_makes_no_mutating_request(*cloud)


def test_destroy_leaves_nothing_the_plan_made(cloud) -> None:
    check_destroy_leaves_nothing(*cloud, (HUB, SPOKE))


def _apply_disagreeing(tmp_path: Path, text: str, failing: set[str], waiting: set[str]) -> list:
    """Apply a plan whose two sides disagree: `failing` steps fail at their deadline, the steps
    that need them are skipped, everything else is made and recorded; a second apply fails the
    same way; destroy is clean."""
    with Emulator() as emu:
        dep = orchestrator.load(variant(tmp_path, text), emulator=emu,
                                state_dir=tmp_path / ".provision")
        result = dep.apply()
        ledger = dep.ledger()
        assert {f.step for f in result.failures} == failing
        assert set(result.skipped) == waiting
        made = set(ledger.resources)
        assert made == {s.id for s in dep.plan.steps} - waiting
        for step_id in made - failing:
            assert ledger.resources[step_id].status == "present", step_id
        for step_id in failing:
            assert ledger.resources[step_id].error
        # Applied again as it is: the same steps wait again and fail the same way.
        again = dep.apply()
        assert [(f.step, f.message) for f in sorted(again.failures, key=lambda f: f.step)] == [
            (f.step, f.message) for f in sorted(result.failures, key=lambda f: f.step)]
        destroyed = dep.destroy()
        assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        assert dep.ledger().resources == {}
        assert leftovers(emu, (HUB, SPOKE)) == []
        dep.close()
    return result.failures


def _spoke_tunnel_with_another_secret(tmp_path: Path) -> tuple[str, Path]:
    """The plan with the spoke's second tunnel taking its secret from a file of its own, which
    holds another secret than the hub's."""
    other = tmp_path / "other-secret"
    other.write_text("not-the-hub-secret\n")
    text = PLAN.read_text().replace(
        "  vpn_shared_secret: {file: demo-vpn/shared-secret}\n",
        f"  vpn_shared_secret: {{file: demo-vpn/shared-secret}}\n  other: {{file: {other}}}\n",
    )
    text = edit_step(text, "spoke-tunnel-1", "vpnGatewayInterface: 1}",
                     "vpnGatewayInterface: 1, sharedSecret: '${secrets.other}'}")
    return text, other


def test_different_shared_secrets_fail_the_tunnels_at_their_deadline_with_googles_status(
    tmp_path: Path,
) -> None:
    text, _ = _spoke_tunnel_with_another_secret(tmp_path)
    failures = _apply_disagreeing(
        tmp_path, text, failing={"hub-tunnel-1", "spoke-tunnel-1"},
        waiting={"hub-interface-1", "spoke-interface-1", "hub-peer-1", "spoke-peer-1"},
    )
    for failure in failures:
        assert "not ready at the step's deadline" in failure.message
        assert "AUTHORIZATION_ERROR" in failure.message
        assert "the peer rejected the shared secret" in failure.message


def test_mismatched_link_local_ranges_leave_the_sessions_down(tmp_path: Path) -> None:
    # The spoke's first interface is in another /30 than the hub's: each side is consistent
    # in itself, so Google takes both, but the two never form a session.
    text = edit_step(PLAN.read_text(), "spoke-interface-0", "169.254.0.2/30", "169.254.0.6/30")
    text = edit_step(text, "spoke-peer-0", "169.254.0.1", "169.254.0.5")
    failures = _apply_disagreeing(tmp_path, text, failing={"hub-peer-0", "spoke-peer-0"},
                                  waiting=set())
    for failure in failures:
        assert "not ready at the step's deadline" in failure.message
        assert "BGP session status DOWN" in failure.message


def test_the_shared_secret_never_reaches_the_ledger_the_events_or_the_output(
    tmp_path: Path,
) -> None:
    env = dict(os.environ)
    with Emulator() as emu:

        def cli(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "orchestrator", *args, str(PLAN),
                 f"--emulator={emu.url}", "--yes"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout + done.stderr

        events = cli("apply", "--json")
        ledger = tmp_path / ".provision" / "vpn-hub.ledger.json"
        recorded = ledger.read_text()
        display = cli("apply") + cli("destroy")
    assert [json.loads(line)["type"] for line in events.splitlines()][-1] == "run_finished"
    assert json.loads(recorded)["resources"]["hub-tunnel-0"]["spec"]["sharedSecret"]
    for text in (events, recorded, display, *(p.read_text() for p in ledger.parent.glob("*"))):
        assert SECRET not in text
        assert not re.search(re.escape(SECRET[:12]), text)


def test_the_corrected_secret_is_applied_after_tunnels_failed_on_the_wrong_one(
    tmp_path: Path,
) -> None:
    text, other = _spoke_tunnel_with_another_secret(tmp_path)
    with Emulator() as emu:
        dep = orchestrator.load(variant(tmp_path, text), emulator=emu,
                                state_dir=tmp_path / ".provision")
        assert {f.step for f in dep.apply().failures} == {"hub-tunnel-1", "spoke-tunnel-1"}
        other.write_text(SECRET)  # the spoke's tunnel gets the hub's secret
        fixed = dep.apply()
        assert fixed.ok, [(f.step, f.message) for f in fixed.failures]
        assert fixed.actions["spoke-tunnel-1"] == "replace"
        assert dep.destroy().ok
        dep.close()


def test_plan_shows_google_s_preview_of_a_router_s_changes(tmp_path: Path) -> None:
    """A change to a BGP peer: plan asks routers.preview for the router with it, and says what
    Google answers; a peer address outside its interface's /30 is refused there, before
    apply, with Google's words. Nothing changes either way."""
    with applied(PLAN, tmp_path / "applied") as (emu, dep):
        _plan_previews(emu, dep, tmp_path)


def _plan_previews(emu: Emulator, dep: object, tmp_path: Path) -> None:
    text = PLAN.read_text()
    good = edit_step(text, "hub-peer-0", "peerIpAddress: 169.254.0.2",
                     "peerIpAddress: 169.254.0.2\n      advertisedRoutePriority: 200")
    bad = edit_step(text, "hub-peer-0", "peerIpAddress: 169.254.0.2",
                    "peerIpAddress: 169.254.9.2")
    said = []
    for text_ in (good, bad):
        events: list = []
        before = len(emu.requests())
        with orchestrator.load(variant(tmp_path, text_), emulator=emu,
                               ledger=dep.ledger_location,  # type: ignore[attr-defined]
                               on_event=events.append) as other:
            preview = other.plan_changes()
        assert [c.step for c in preview.steps if c.action != "noop"] == ["hub-peer-0"]
        made = emu.requests()[before:]
        assert "compute.routers.preview" in {r["method"] for r in made}
        assert [r["method"] for r in made if r["mutating"]] == []
        said.append([e for e in events if e.type == "diagnostic"])
    assert [e.message for e in said[0]] == [
        "router hub-router, as Google previews it with the changes of hub-peer-0: "
        "2 interfaces, 2 BGP peers"]
    assert said[1][0].data == {"level": "warning"}
    assert "refuses them" in said[1][0].message and "169.254.0.0/30" in said[1][0].message
