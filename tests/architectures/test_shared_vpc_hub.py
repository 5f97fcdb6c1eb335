"""Architecture B, shared-VPC variant, end to end: plans/shared-vpc-hub.yaml applied on the
emulator, the shared VPC, Apigee and VPN wiring checked with the real client libraries,
re-applied as a no-op, destroyed clean."""

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
    compute,
)

PLAN = Path(__file__).parents[2] / "plans" / "shared-vpc-hub.yaml"
HOST = "shared-vpc-host"
APIGEE = "apigee-service-project"
SPOKES = {"backend-spoke-a": "spoke-a-router", "backend-spoke-b": "spoke-b-router"}
PROJECTS = (HOST, APIGEE, *SPOKES)
REGION = "europe-west1"
APIGEE_RANGES = {"10.0.0.0/22", "10.1.0.0/28"}
# Slower than the other suites' 0.001: tunnels and BGP sessions wait on their other end, and a
# loaded machine's stall must not pass for their 20 simulated minutes.
STEPS = 62



@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, object]]:
    with applied(PLAN, tmp_path_factory.mktemp("xpn")) as pair:
        yield pair


def test_every_step_is_present(cloud) -> None:
    check_every_step_is_present(cloud[1], STEPS)


def test_apigee_project_is_a_service_project_of_the_host(cloud) -> None:
    emu, _ = cloud
    projects = compute(emu, "ProjectsClient")
    assert projects.get(project=HOST).xpn_project_status == "HOST"
    assert projects.get_xpn_host(project=APIGEE).name == HOST
    attached = [(r.id, r.type_) for r in projects.get_xpn_resources(project=HOST)]
    assert attached == [(APIGEE, "PROJECT")]


def test_service_project_may_use_the_shared_subnet(cloud) -> None:
    emu, dep = cloud
    number = dep.outputs()["apigee-service-project"]["projectNumber"]
    policy = compute(emu, "SubnetworksClient").get_iam_policy(
        project=HOST, region=REGION, resource="apigee")
    users = [list(b.members) for b in policy.bindings if b.role == "roles/compute.networkUser"]
    assert users == [[f"serviceAccount:{number}@cloudservices.gserviceaccount.com"]]
    resourcemanager = discovery.build(
        "cloudresourcemanager", "v3", credentials=AnonymousCredentials(), static_discovery=True,
        client_options={"api_endpoint": f"{emu.url}/cloudresourcemanager/"})
    project = resourcemanager.projects().get(name=f"projects/{APIGEE}").execute()
    assert project["name"] == f"projects/{number}"


def test_organization_in_the_service_project_uses_the_host_network(cloud) -> None:
    emu, _ = cloud
    apigee = discovery.build("apigee", "v1", credentials=AnonymousCredentials(),
                             static_discovery=True,
                             client_options={"api_endpoint": f"{emu.url}/apigee/"})
    org = apigee.organizations().get(name=f"organizations/{APIGEE}").execute()
    assert org["authorizedNetwork"] == f"projects/{HOST}/global/networks/hub"
    network = compute(emu, "NetworksClient").get(project=HOST, network="hub")
    [peering] = [p for p in network.peerings if p.name == "servicenetworking-googleapis-com"]
    assert peering.export_custom_routes


def test_every_spoke_learns_apigee_ranges_over_two_established_tunnels(cloud) -> None:
    emu, _ = cloud
    routers = compute(emu, "RoutersClient")
    tunnels = compute(emu, "VpnTunnelsClient")
    for project in PROJECTS:
        for tunnel in tunnels.list(project=project, region=REGION):
            assert tunnel.status == "ESTABLISHED", (tunnel.name, tunnel.detailed_status)
    for project, router in SPOKES.items():
        status = routers.get_router_status(project=project, region=REGION, router=router).result
        assert [p.status for p in status.bgp_peer_status] == ["UP", "UP"]
        # The hub's subnet and Apigee's ranges; not the other spoke's (the hub announces what
        # it is told to, not what it learns).
        assert {r.dest_range for r in status.best_routes} == APIGEE_RANGES | {"10.2.0.0/24"}
    hub = routers.get_router_status(project=HOST, region=REGION, router="hub-router").result
    assert len(hub.bgp_peer_status) == 4 and {p.status for p in hub.bgp_peer_status} == {"UP"}
    assert {r.dest_range for r in hub.best_routes} == {"10.30.0.0/24", "10.40.0.0/24"}


def test_reapply_makes_no_mutating_request(cloud) -> None:
    check_reapply_makes_no_mutating_request(*cloud)


def test_destroy_leaves_nothing_the_plan_made(cloud) -> None:
    check_destroy_leaves_nothing(*cloud, PROJECTS)
    assert compute(cloud[0], "ProjectsClient").get(project=HOST).xpn_project_status != "HOST"
