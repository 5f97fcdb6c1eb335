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
