"""Limits across steps, checked at validation: a Cloud Router's 128 BGP peers, and a peer on
its own router's ASN, in the wheel where for_each makes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.plan import PlanError, load_plan_text

WHEEL = (Path(__file__).parents[2] / "plans" / "vpn-wheel.yaml").read_text()


def wheel(spokes: list[str]) -> str:
    listed = "".join(f"    {s}\n" for s in spokes)
    return re.sub(r"  spokes:\n(    - .*\n)+", f"  spokes:\n{listed}", WHEEL)


def spoke(i: int, asn: int | None = None) -> str:
    return (f"- {{name: s{i}, project: s{i}-wheel-project, subnet: 10.{100 + i}.0.0/24, "
            f"backend: 10.{100 + i}.0.10, asn: {asn or 65000 + i}, advertise: []}}")


def test_a_wheel_of_65_members_fits_and_66_do_not() -> None:
    fits = load_plan_text(wheel([spoke(i) for i in range(64)]), "w.yaml")
    peers = [s for s in fits.steps if s.kind == "compute.router_bgp_peer"
             and s.scope["router"] == "${router[apigee].name}"]
    assert len(peers) == 128
    with pytest.raises(PlanError) as caught:
        load_plan_text(wheel([spoke(i) for i in range(65)]), "w.yaml")
    said = str(caught.value)
    assert "130 BGP peers on router ${router[apigee].name}: a Cloud Router takes at most 128" in (
        said)
    assert said.startswith("w.yaml:")


def test_two_members_on_one_asn_are_refused_naming_the_peers() -> None:
    with pytest.raises(PlanError) as caught:
        load_plan_text(wheel([spoke(1), spoke(2, asn=65001)]), "w.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 4  # both links of the pair, on both routers
    assert all("65001 is the ASN of its own router" in line for line in lines)
    assert "step 'peer-a[s1-s2-0]' properties.peerAsn" in lines[0]


def test_a_sixth_router_in_one_network_and_region_is_refused() -> None:
    routers = "".join(f"""  - id: router-{i}
    kind: compute.router
    name: router-{i}
    properties: {{network: "${{net.selfLink}}", bgp: {{asn: {64512 + i}}}}}
""" for i in range(6))
    text = f"""name: routers
defaults: {{project: p, region: europe-west1}}
steps:
  - {{id: net, kind: compute.network, name: net, properties: {{autoCreateSubnetworks: false}}}}
{routers}"""
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, "r.yaml")
    said = str(caught.value)
    assert "step 'router-5' properties.network" in said
    assert "6 Cloud Routers in network ${net.selfLink}, region europe-west1: a network takes at " \
        "most 5 per region" in said
    five = text.replace(routers, routers.split("  - id: router-5")[0])
    assert len(load_plan_text(five, "r.yaml").steps) == 6
