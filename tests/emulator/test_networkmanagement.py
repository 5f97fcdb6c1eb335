"""Network Management connectivity tests on the emulator, through Google's discovery client:
the result shapes of Google's analysis for the hop it can trace in architecture A (a PSC NAT
address to the internal load balancer, to the serverless NEG), its drops and aborts, rerun,
and verify's own tests (deleted afterwards, or kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build

import orchestrator
from provision_emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
P = "backend-demo-project"
NETWORK = f"projects/{P}/global/networks/backend-vpc"
RULE = f"projects/{P}/regions/europe-west1/forwardingRules/cloud-run-ilb"
PARENT = f"projects/{P}/locations/global"


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Emulator() as emu:
        dep = orchestrator.load(ROOT / "plans/psc-cloud-run.yaml", emulator=emu,
                                state_dir=tmp_path_factory.mktemp("nm") / ".provision")
        assert dep.apply().ok
        yield emu, dep
        dep.close()


def connectivity_api(emu: Emulator) -> Any:
    nm = build("networkmanagement", "v1", credentials=AnonymousCredentials(), static_discovery=True,
               client_options=ClientOptions(api_endpoint=f"{emu.url}/networkmanagement/"))
    return nm.projects().locations().global_()


def analysed(applied: Any, test_id: str, source: dict, destination: dict) -> dict[str, Any]:
    emu, dep = applied
    api = connectivity_api(emu)
    op = api.connectivityTests().create(parent=PARENT, testId=test_id, body={
        "source": source, "destination": destination, "protocol": "TCP"}).execute()
    assert op["name"].startswith(f"{PARENT}/operations/") and not op.get("done")
    while not op.get("done"):
        dep.clock.sleep(10)
        op = api.operations().get(name=op["name"]).execute()
    return api.connectivityTests().get(name=f"{PARENT}/connectivityTests/{test_id}").execute()


def states(test: dict[str, Any]) -> list[str]:
    return [s["state"] for s in test["reachabilityDetails"]["traces"][0]["steps"]]


def test_from_the_psc_nat_subnet_to_the_load_balancer_reaches_the_serverless_neg(
    applied: Any,
) -> None:
    test = analysed(applied, "nat-to-ilb", {"ipAddress": "10.2.2.5", "network": NETWORK,
                                            "projectId": P},
                    {"forwardingRule": RULE, "port": 443, "projectId": P})
    details = test["reachabilityDetails"]
    assert details["result"] == "REACHABLE" and details["verifyTime"]
    assert states(test) == [
        "START_FROM_PRIVATE_NETWORK", "APPLY_EGRESS_FIREWALL_RULE", "APPLY_FORWARDING_RULE",
        "ARRIVE_AT_INTERNAL_LOAD_BALANCER", "PROXY_CONNECTION", "ANALYZE_LOAD_BALANCER_BACKEND",
        "DELIVER"]
    final = details["traces"][0]["steps"][-1]
    assert final["deliver"]["target"] == "SERVERLESS_NEG"
    assert final["deliver"]["resourceUri"].endswith("/networkEndpointGroups/cloud-run-neg")
    proxied = details["traces"][0]["steps"][4]["proxyConnection"]
    assert proxied["subnetUri"].endswith("/subnetworks/proxy-only-subnet")
    assert details["traces"][0]["endpointInfo"]["destinationIp"] == "10.2.0.2"


def test_a_port_the_rule_does_not_serve_drops_and_a_source_outside_the_network_aborts(
    applied: Any,
) -> None:
    dropped = analysed(applied, "wrong-port", {"ipAddress": "10.2.2.5", "network": NETWORK},
                       {"forwardingRule": RULE, "port": 8443})
    assert dropped["reachabilityDetails"]["result"] == "UNREACHABLE"
    last = dropped["reachabilityDetails"]["traces"][0]["steps"][-1]
    assert (last["state"], last["causesDrop"], last["drop"]["cause"]) == (
        "DROP", True, "FORWARDING_RULE_MISMATCH")
    aborted = analysed(applied, "outside", {"ipAddress": "192.168.9.9", "network": NETWORK},
                       {"forwardingRule": RULE, "port": 443})
    assert aborted["reachabilityDetails"]["result"] == "UNDETERMINED"
    assert states(aborted) == ["ABORT"]
    step = aborted["reachabilityDetails"]["traces"][0]["steps"][0]
    assert step["abort"]["cause"] == "NO_SOURCE_GCP_NETWORK_LOCATION"


def test_what_the_emulator_does_not_trace_is_undetermined_not_invented(applied: Any) -> None:
    test = analysed(applied, "to-an-ip", {"ipAddress": "10.2.2.5", "network": NETWORK},
                    {"ipAddress": "10.2.0.9", "network": NETWORK, "port": 80})
    assert test["reachabilityDetails"]["result"] == "UNDETERMINED"
    assert test["reachabilityDetails"]["traces"][0]["steps"][-1]["abort"]["cause"] == (
        "UNSUPPORTED")


def test_rerun_analyses_again(applied: Any) -> None:
    emu, dep = applied
    first = analysed(applied, "again", {"ipAddress": "10.2.2.5", "network": NETWORK},
                     {"forwardingRule": RULE, "port": 443})
    dep.clock.sleep(60)
    api = connectivity_api(emu)
    op = api.connectivityTests().rerun(name=f"{PARENT}/connectivityTests/again", body={}).execute()
    while not op.get("done"):
        dep.clock.sleep(10)
        op = api.operations().get(name=op["name"]).execute()
    again = api.connectivityTests().get(name=f"{PARENT}/connectivityTests/again").execute()
    assert again["reachabilityDetails"]["result"] == "REACHABLE"
    assert again["reachabilityDetails"]["verifyTime"] > first["reachabilityDetails"]["verifyTime"]


def test_verify_deletes_its_tests_unless_asked_to_keep_them(applied: Any) -> None:
    emu, dep = applied
    api = connectivity_api(emu)

    def verify_tests() -> list[str]:
        listed = api.connectivityTests().list(parent=PARENT).execute().get("resources", [])
        return [t["name"] for t in listed if "/provision-verify-" in t["name"]]

    report = dep.verify()
    assert {h.status for p in report.paths for h in p.hops if h.name == "reachability"} == {"ok"}
    assert verify_tests() == []
    dep.verify(keep_tests=True)
    [kept] = verify_tests()
    # A test left behind is rerun, not made twice.
    dep.verify(keep_tests=True)
    assert verify_tests() == [kept]
    skipped = dep.verify(connectivity_tests=False)
    assert {h.status for p in skipped.paths for h in p.hops if h.name == "reachability"} == {
        "unknown"}


@pytest.fixture(scope="module")
def vpn_applied(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Emulator() as emu:
        dep = orchestrator.load(ROOT / "plans/vpn-hub.yaml", emulator=emu,
                                state_dir=tmp_path_factory.mktemp("nmvpn") / ".provision")
        assert dep.apply().ok
        yield emu, dep
        dep.close()


HUB = "projects/apigee-hub-project/global/networks/hub-vpc"
SPOKE = "projects/backend-spoke-project/global/networks/spoke-vpc"


def vpn_test(vpn_applied: Any, test_id: str, source: str, port: int,
             bypass: bool) -> dict[str, Any]:
    emu, dep = vpn_applied
    api = connectivity_api(emu)
    parent = "projects/apigee-hub-project/locations/global"
    op = api.connectivityTests().create(parent=parent, testId=test_id, body={
        "source": {"ipAddress": source, "network": HUB},
        "destination": {"ipAddress": "10.20.0.10", "network": SPOKE, "port": port},
        "protocol": "TCP", "bypassFirewallChecks": bypass}).execute()
    while not op.get("done"):
        dep.clock.sleep(10)
        op = api.operations().get(name=op["name"]).execute()
    return api.connectivityTests().get(name=f"{parent}/connectivityTests/{test_id}").execute()


def test_across_the_vpn_the_trace_follows_the_learned_route_and_the_tunnel(
    vpn_applied: Any,
) -> None:
    test = vpn_test(vpn_applied, "across", "10.2.0.5", 443, bypass=True)
    steps = test["reachabilityDetails"]["traces"][0]["steps"]
    assert [s["state"] for s in steps] == [
        "START_FROM_PRIVATE_NETWORK", "APPLY_ROUTE", "ARRIVE_AT_VPN_TUNNEL",
        "ARRIVE_AT_VPN_GATEWAY", "APPLY_ROUTE", "DROP"]
    route = steps[1]["route"]
    assert (route["routeType"], route["nextHopType"], route["destIpRange"]) == (
        "DYNAMIC", "NEXT_HOP_VPN_TUNNEL", "10.20.0.0/24")
    assert steps[2]["vpnTunnel"]["uri"].endswith("/vpnTunnels/" + steps[2]["vpnTunnel"][
        "displayName"])
    # Nothing listens at a reserved address: Google cannot resolve it to a target.
    assert steps[-1]["drop"]["cause"] == "UNKNOWN_INTERNAL_ADDRESS"


def test_the_spoke_firewall_drops_a_source_it_does_not_admit(vpn_applied: Any) -> None:
    """The spoke admits only Apigee's ranges: a hub subnet address is dropped by the implied
    deny, unless the test bypasses firewalls."""
    test = vpn_test(vpn_applied, "firewalled", "10.2.0.5", 443, bypass=False)
    last = test["reachabilityDetails"]["traces"][0]["steps"][-1]
    assert test["reachabilityDetails"]["result"] == "UNREACHABLE"
    assert (last["drop"]["cause"], last["firewall"]["displayName"]) == (
        "FIREWALL_RULE", "default-ingress-deny")
