"""Southbound to VMs, end to end: plans/psc-ilb-mig.yaml applied on the emulator (apply waits
for the web VMs to run), the passthrough load balancer's chain from the service attachment down
to healthy VMs checked with the real client libraries, re-applied as a no-op, destroyed
clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import compute_v1

import orchestrator
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


def edited(plan: Path, tmp_path: Path, old: str, new: str) -> Path:
    out = tmp_path / PLAN.name
    out.write_text(plan.read_text().replace(old, new))
    return out


def test_day_2_more_vms_are_waited_for_and_a_new_template_replaces_what_uses_the_group(
        tmp_path: Path) -> None:
    with Emulator() as emu:
        state = tmp_path / ".provision"
        assert orchestrator.load(PLAN, emulator=emu, state_dir=state).apply().ok
        more = orchestrator.load(PLAN, emulator=emu, state_dir=state, vars={"web_vms": "3"})
        assert {c.step: c.action for c in more.plan_changes().steps if c.action != "noop"} == {
            "web-group": "update"}
        assert more.apply().ok
        # apply waited for the third VM to run
        group = compute(emu, "RegionInstanceGroupManagersClient").get(
            project=BACKEND, region=REGION, instance_group_manager="web")
        assert group.target_size == 3 and group.status.is_stable

        # A template cannot change, and Google deletes no group a backend service uses: a new
        # template replaces the group and what uses it, as the plan says.
        plan = edited(PLAN, tmp_path, "machineType: e2-small", "machineType: e2-medium")
        changed = orchestrator.load(plan, emulator=emu, state_dir=state, vars={"web_vms": "3"})
        preview = changed.plan_changes()
        assert {c.step: c.action for c in preview.steps if c.action != "noop"} == {
            "web-template": "replace", "web-group": "replace", "backend-service": "replace",
            "forwarding-rule": "replace", "service-attachment": "replace",
            "endpoint-attachment": "replace", "apigee-record": "update"}
        result = changed.apply(approved=preview)
        assert result.ok, [(f.step, f.message) for f in result.failures]
        assert not changed.plan_changes().has_changes
        assert changed.verify().ok
        assert changed.destroy().ok
