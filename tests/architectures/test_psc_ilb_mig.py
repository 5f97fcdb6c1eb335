"""Southbound to VMs, end to end: plans/psc-ilb-mig.yaml applied on the emulator (apply waits
for the web VMs to run), the passthrough load balancer's chain from the service attachment down
to healthy VMs checked with the real client libraries, re-applied as a no-op, destroyed
clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import compute_v1

from provision_emulator import Emulator

from .conftest import (
    applied,
    check_destroy_leaves_nothing,
    check_every_step_is_present,
    check_reapply_makes_no_mutating_request,
    compute,
)

PLAN = Path(__file__).parents[2] / "plans" / "psc-ilb-mig.yaml"
APIGEE, BACKEND = "apigee-vm-project", "backend-vm-project"
REGION = "europe-west1"
STEPS = 26


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, object]]:
    with applied(PLAN, tmp_path_factory.mktemp("vms")) as pair:
        yield pair


def test_every_step_is_present(cloud) -> None:
    check_every_step_is_present(cloud[1], STEPS)


def test_the_service_attachment_fronts_a_passthrough_balancer_of_healthy_vms(cloud) -> None:
    emu, _ = cloud
    attachment = compute(emu, "ServiceAttachmentsClient").get(
        project=BACKEND, region=REGION, service_attachment="web-psc")
    rule = compute(emu, "ForwardingRulesClient").get(project=BACKEND, region=REGION,
                                                     forwarding_rule="web-ilb")
    assert attachment.target_service == rule.self_link
    assert (rule.load_balancing_scheme, list(rule.ports)) == ("INTERNAL", ["80"])
    backend = compute(emu, "RegionBackendServicesClient").get(
        project=BACKEND, region=REGION, backend_service="web")
    assert rule.backend_service == backend.self_link
    assert [b.balancing_mode for b in backend.backends] == ["CONNECTION"]
    health = compute(emu, "RegionBackendServicesClient").get_health(
        project=BACKEND, region=REGION, backend_service="web",
        resource_group_reference_resource=compute_v1.ResourceGroupReference(
            group=backend.backends[0].group))
    assert [s.health_state for s in health.health_status] == ["HEALTHY", "HEALTHY"]
    assert all(s.ip_address.startswith("10.3.0.") for s in health.health_status)


def test_reapply_makes_no_mutating_request(cloud) -> None:
    check_reapply_makes_no_mutating_request(*cloud)


def test_destroy_leaves_nothing_the_plan_made(cloud) -> None:
    check_destroy_leaves_nothing(*cloud, (APIGEE, BACKEND))
