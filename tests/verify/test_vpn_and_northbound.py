"""`provision verify` on architecture B (Apigee → hub → HA VPN → spoke) and on the northbound
path (external load balancer → PSC NEG → Apigee): the reference plans verify with no broken
hop, and each variant Google accepts but where traffic cannot flow names its broken hop and
step."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_psc_southbound import PLANS, applied_report, variant

B_HOPS = ["dns", "backend-network", "vpn-tunnels", "bgp", "routes-to-backend",
          "routes-to-apigee", "reachability", "peering-export", "firewall"]
NORTHBOUND_HOPS = ["forwarding-rule", "certificate", "public-dns", "url-map", "backend-service",
                   "psc-neg", "envgroup"]


@pytest.mark.parametrize(("plan", "backends"), [
    ("vpn-hub.yaml", ["api.spoke.internal.example.com"]),
    ("shared-vpc-hub.yaml", ["orders.backends.internal.example.com",
                             "payments.backends.internal.example.com"]),
])
def test_a_vpn_plan_verifies_every_backend_with_every_hop_ok(
    plan: str, backends: list[str], tmp_path: Path,
) -> None:
    report = applied_report(PLANS / plan, tmp_path)
    assert sorted(p.name.split(" → ")[1] for p in report.paths) == backends
    for path in report.paths:
        assert path.pattern == "vpn-southbound"
        assert [h.name for h in path.hops] == B_HOPS
        # The plans reserve the backend's address but run nothing there: Google's analysis
        # carries the packet over the tunnel into the spoke and knows nothing listening.
        assert {h.name: h.status for h in path.hops if h.status != "ok"} == {
            "reachability": "warning"}
        reach = next(h for h in path.hops if h.name == "reachability")
        assert "ARRIVE_AT_VPN_TUNNEL" in reach.evidence and "knows nothing listening" in (
            reach.evidence)


def test_the_northbound_plan_verifies_with_what_only_google_can_show_left_open(
    tmp_path: Path,
) -> None:
    """No broken hop. Right after apply the managed certificate is still PROVISIONING (a
    warning: Google issues it once the hostname's public record points at the load
    balancer), and the hostname's public record is in no zone of the plan (unknown)."""
    report = applied_report(PLANS / "northbound-psc.yaml", tmp_path)
    [path] = report.paths
    assert path.pattern == "northbound" and path.name == "api.example.com → forwarding-rule"
    assert [h.name for h in path.hops] == NORTHBOUND_HOPS
    assert {h.name: h.status for h in path.hops if h.status != "ok"} == {
        "certificate": "warning", "public-dns": "unknown"}


HUB_RANGES = ("        advertisedIpRanges:\n"
              "          - {range: 10.0.0.0/22, description: Apigee runtime}\n"
              "          - {range: 10.1.0.0/28, description: Apigee support}\n")

# name -> (plan, edits, the broken hop, the step named)
VARIANTS = {
    "hub router that does not advertise the Apigee ranges": (
        "vpn-hub.yaml", [(HUB_RANGES, ""), ("advertiseMode: CUSTOM\n", "advertiseMode: DEFAULT\n"),
                         ("        advertisedGroups: [ALL_SUBNETS]\n", "")],
        "routes-to-apigee", "hub-router"),
    "spoke router that advertises another range": (
        "vpn-hub.yaml", [('bgp: {asn: "${vars.spoke_asn}"}',
                          'bgp: {asn: "${vars.spoke_asn}", advertiseMode: CUSTOM, '
                          'advertisedIpRanges: [{range: 10.99.0.0/24}]}')],
        "routes-to-backend", "spoke-router"),
    "custom routes not exported to Apigee": (
        "vpn-hub.yaml", [("exportCustomRoutes: true", "exportCustomRoutes: false")],
        "peering-export", "psa-routes"),
    "spoke firewall for another port": (
        "vpn-hub.yaml", [('ports: ["80", "443"]', 'ports: ["8080"]')],
        "firewall", "spoke-allow-apigee"),
    "spoke firewall for the support range only": (
        "vpn-hub.yaml", [("sourceRanges: [10.0.0.0/22, 10.1.0.0/28]",
                          "sourceRanges: [10.1.0.0/28]")],
        "firewall", "spoke-allow-apigee"),
    "DNS peering for another domain than the backends'": (
        "vpn-hub.yaml", [('dnsSuffix: "${vars.backend_domain}."', 'dnsSuffix: "other.example."')],
        "dns", "apigee-dns-peering"),
    "hostname in no environment group": (
        "northbound-psc.yaml", [('hostnames: ["${vars.domain}"]',
                                 'hostnames: ["other.example.com"]')],
        "envgroup", "envgroup"),
    "load balancer on another port": (
        "northbound-psc.yaml", [('portRange: "443"', 'portRange: "8443"')],
        "forwarding-rule", "forwarding-rule"),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_variant_with_one_broken_hop_is_named(name: str, tmp_path: Path) -> None:
    plan, edits, hop, step = VARIANTS[name]
    report = applied_report(variant(tmp_path, plan, edits), tmp_path)
    broken = report.broken()
    assert {(h.name, h.step) for _, h in broken} == {(hop, step)}, [
        (p.name, h.name, h.step, h.evidence) for p, h in report.broken()]
    assert all(h.fix for _, h in broken)


def test_an_instance_that_does_not_accept_the_load_balancer_s_project_is_named(
    tmp_path: Path,
) -> None:
    plan = variant(tmp_path, "northbound-psc.yaml", [(
        'consumerAcceptList: ["${vars.apigee_project}", "${vars.edge_project}"]',
        'consumerAcceptList: ["${vars.apigee_project}"]')])
    report = applied_report(plan, tmp_path, readiness=False)
    assert {(h.name, h.step) for _, h in report.broken()} == {("psc-neg", "instance")}
    assert "edge-lb-project" in report.broken()[0][1].fix
