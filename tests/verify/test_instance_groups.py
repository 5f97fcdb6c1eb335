"""`provision verify` where managed instance groups carry the traffic: southbound through an
internal passthrough load balancer to VMs (plans/psc-ilb-mig.yaml), and northbound through a
MIG bridge (plans/northbound-mig-bridge.yaml). The reference plans verify, and each variant
Google accepts but where traffic cannot flow names its broken hop and step; the probe's request,
worked out by the emulator's runtime, meets the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_psc_southbound import PLANS, applied_report, probed, variant, walked

PASSTHROUGH_HOPS = ["deployment", "dns", "endpoint-attachment", "service-attachment",
                    "forwarding-rule", "backend-service", "backend-health", "firewall", "path",
                    "probe"]
BRIDGE_HOPS = ["forwarding-rule", "certificate", "public-dns", "url-map", "backend-service",
               "backend-health", "bridge", "envgroup"]
WEB_RANGES = "sourceRanges: [130.211.0.0/22, 35.191.0.0/16, 10.3.1.0/24]"


def test_the_vm_plan_verifies_every_hop_and_the_probe_reaches_a_vm(tmp_path: Path) -> None:
    report = applied_report(PLANS / "psc-ilb-mig.yaml", tmp_path)
    [path] = report.paths
    assert [h.name for h in path.hops] == PASSTHROUGH_HOPS
    assert report.ok, [(h.name, h.evidence) for h in path.hops if h.status != "ok"]
    health = next(h for h in path.hops if h.name == "backend-health")
    assert health.evidence.startswith("2 of 2 VMs HEALTHY")
    assert "answered 200" in path.hops[-1].evidence


def test_a_firewall_without_the_psc_nat_subnet_breaks_the_path_and_the_probe(
        tmp_path: Path) -> None:
    plan = variant(tmp_path, "psc-ilb-mig.yaml", [
        (WEB_RANGES, "sourceRanges: [130.211.0.0/22, 35.191.0.0/16]")])
    report = applied_report(plan, tmp_path)
    assert walked(report) == {("firewall", "web-firewall")}
    [(_, hop)] = [(p, h) for p, h in report.broken() if h.name == "firewall"]
    assert "10.3.1.0/24" in hop.fix and "tagged web" in hop.fix
    # Apigee's request is dropped on the way to the VM: the target cannot be reached.
    assert probed(report) == {("messaging.adaptors.http.flow.ServiceUnavailable",
                               "web-firewall")}


def test_vms_google_s_probes_cannot_reach_still_take_connections_as_a_last_resort(
        tmp_path: Path) -> None:
    """Google: "When all backend VMs are unhealthy, the load balancer distributes new
    connections among all backends as a last resort" (passthrough): a warning, and the probe's
    request is still answered."""
    plan = variant(tmp_path, "psc-ilb-mig.yaml", [(WEB_RANGES, "sourceRanges: [10.3.1.0/24]")])
    report = applied_report(plan, tmp_path)
    assert report.broken() == []
    [path] = report.paths
    health = next(h for h in path.hops if h.name == "backend-health")
    assert health.status == "warning" and health.evidence.startswith("0 of 2 VMs HEALTHY")
    assert "35.191.0.0/16" in health.fix and health.step == "web-health-check"
    assert path.hops[-1].status == "ok"


def test_the_bridge_plan_verifies_with_what_only_google_can_show_left_open(
        tmp_path: Path) -> None:
    report = applied_report(PLANS / "northbound-mig-bridge.yaml", tmp_path)
    [path] = report.paths
    assert path.pattern == "northbound"
    assert [h.name for h in path.hops] == BRIDGE_HOPS
    assert {h.name: h.status for h in path.hops if h.status != "ok"} == {
        "certificate": "warning", "public-dns": "unknown"}
    bridge = next(h for h in path.hops if h.name == "bridge")
    assert "forwards to 10.0.0.2, instance euw1" in bridge.evidence


# name -> (edits, the broken hop, the step named)
BRIDGE_VARIANTS = {
    "bridge that forwards elsewhere": (
        [('{key: ENDPOINT, value: "${instance.host}"}', "{key: ENDPOINT, value: 10.9.9.9}")],
        "bridge", "bridge-template"),
    "no firewall rule for Google's probes": (
        [("sourceRanges: [130.211.0.0/22, 35.191.0.0/16]", "sourceRanges: [10.2.0.0/24]")],
        "backend-health", "bridge-health-check"),
}


@pytest.mark.parametrize("name", list(BRIDGE_VARIANTS))
def test_a_bridge_variant_names_its_broken_hop(name: str, tmp_path: Path) -> None:
    edits, hop, step = BRIDGE_VARIANTS[name]
    report = applied_report(variant(tmp_path, "northbound-mig-bridge.yaml", edits), tmp_path)
    assert walked(report) == {(hop, step)}, [
        (h.name, h.step, h.evidence) for _, h in report.broken()]
    assert all(h.fix for _, h in report.broken())
