"""Architecture A with an Apigee organization without VPC peering, end to end:
plans/psc-cloud-run-non-peered.yaml applied on the emulator (no peering ranges, no Service
Networking connection, an Apigee DNS zone for the backends' domain, northbound through an
external load balancer and a PSC NEG), re-applied as a no-op, verified, destroyed clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery

from provision_emulator import Emulator

from .conftest import (
    applied,
    check_destroy_leaves_nothing,
    check_every_step_is_present,
    check_reapply_makes_no_mutating_request,
    leftovers,
)

PLAN = Path(__file__).parents[2] / "plans" / "psc-cloud-run-non-peered.yaml"
APIGEE = "apigee-np-project"
BACKEND = "backend-np-project"
STEPS = 58


def apigee(emu: Emulator) -> object:
    return discovery.build("apigee", "v1", credentials=AnonymousCredentials(),
                           static_discovery=True,
                           client_options={"api_endpoint": f"{emu.url}/apigee/"})


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, object]]:
    with applied(PLAN, tmp_path_factory.mktemp("np")) as pair:
        yield pair


def test_every_step_is_present(cloud) -> None:
    check_every_step_is_present(cloud[1], STEPS)


def test_the_organization_has_no_peering_and_its_instance_no_range(cloud) -> None:
    emu, _ = cloud
    orgs = apigee(emu).organizations()
    org = orgs.get(name=f"organizations/{APIGEE}").execute()
    assert org["disableVpcPeering"] is True and "authorizedNetwork" not in org
    instance = orgs.instances().get(name=f"organizations/{APIGEE}/instances/euw1").execute()
    assert "peeringCidrRange" not in instance
    assert not [p for p in emu.dump()["resources"].get("servicenetworking", {})
                if APIGEE in p]


def test_the_dns_zone_peers_the_backends_domain_into_the_apigee_network(cloud) -> None:
    emu, _ = cloud
    zones = apigee(emu).organizations().dnsZones().list(
        parent=f"organizations/{APIGEE}").execute()["dnsZones"]
    [zone] = zones
    assert zone["domain"] == "api.internal.example.com"
    assert zone["peeringConfig"] == {"targetProjectId": APIGEE,
                                     "targetNetworkId": "apigee-dns-vpc"}


def test_verify_walks_southbound_through_the_dns_zone_and_northbound(cloud) -> None:
    _, dep = cloud
    report = dep.verify()
    assert report.ok
    southbound = [p for p in report.paths if p.pattern == "psc-southbound"]
    assert len(southbound) == 3
    for path in southbound:
        dns = next(h for h in path.hops if h.name == "dns")
        assert dns.status == "ok" and "Apigee DNS zone internal-example" in dns.evidence
        assert {h.name: h.status for h in path.hops if h.status != "ok"} == {}
    [north] = [p for p in report.paths if p.pattern == "northbound"]
    assert [h.status for h in north.hops if h.name in ("psc-neg", "envgroup")] == ["ok", "ok"]


def test_reapply_makes_no_mutating_request(cloud) -> None:
    check_reapply_makes_no_mutating_request(*cloud)


def test_destroy_leaves_nothing_the_plan_made(cloud) -> None:
    emu, dep = cloud
    check_destroy_leaves_nothing(emu, dep, (APIGEE, BACKEND))
    assert leftovers(emu, (APIGEE, BACKEND)) == []
