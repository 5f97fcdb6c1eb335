"""Architecture B, northbound through a MIG bridge, end to end: plans/northbound-mig-bridge.yaml
applied on the emulator (apply waits for the bridge VMs to run), the group's named ports set on
its instance group, its autoscaler, the backend service's health read through getHealth,
re-applied as a no-op, destroyed clean; a day-2 change of the named ports is one
setNamedPorts, and of the bridge's size one patch of the autoscaler and of the group."""

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

PLAN = Path(__file__).parents[2] / "plans" / "northbound-mig-bridge.yaml"
PROJECT = "apigee-mig-project"
REGION = "europe-west1"
STEPS = 25
LINK = f"https://www.googleapis.com/compute/v1/projects/{PROJECT}"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, object]]:
    with applied(PLAN, tmp_path_factory.mktemp("bridge")) as pair:
        yield pair


def test_every_step_is_present(cloud) -> None:
    check_every_step_is_present(cloud[1], STEPS)


def test_apply_waits_for_the_bridge_vms_to_run(cloud) -> None:
    emu, _ = cloud
    groups = compute(emu, "RegionInstanceGroupManagersClient")
    group = groups.get(project=PROJECT, region=REGION, instance_group_manager="apigee-bridge")
    assert group.status.is_stable and group.target_size == 2
    assert group.status.autoscaler == f"{LINK}/regions/{REGION}/autoscalers/apigee-bridge"
    managed = list(groups.list_managed_instances(project=PROJECT, region=REGION,
                                                 instance_group_manager="apigee-bridge"))
    assert [m.instance_status for m in managed] == ["RUNNING", "RUNNING"]
    vm = compute(emu, "InstancesClient").get(
        project=PROJECT, zone=managed[0].instance.split("/zones/")[1].split("/")[0],
        instance=managed[0].instance.rsplit("/", 1)[1])
    metadata = {i.key: i.value for i in vm.metadata.items}
    instance_host = "10.0.0.2"  # the Apigee instance's address, what the bridge forwards to
    assert metadata["ENDPOINT"] == instance_host and "DNAT" in metadata["startup-script"]


def test_named_ports_are_on_the_instance_group_the_backend_service_uses(cloud) -> None:
    emu, _ = cloud
    group = compute(emu, "RegionInstanceGroupsClient").get(
        project=PROJECT, region=REGION, instance_group="apigee-bridge")
    assert [(p.name, p.port) for p in group.named_ports] == [("https", 443)]
    backend = compute(emu, "BackendServicesClient").get(project=PROJECT,
                                                        backend_service="apigee-bridge")
    assert backend.port_name == "https"
    assert [b.group for b in backend.backends] == [group.self_link]


def test_the_bridge_vms_are_healthy_for_the_load_balancer(cloud) -> None:
    emu, _ = cloud
    health = compute(emu, "BackendServicesClient").get_health(
        project=PROJECT, backend_service="apigee-bridge",
        resource_group_reference_resource=compute_v1.ResourceGroupReference(
            group=f"{LINK}/regions/{REGION}/instanceGroups/apigee-bridge"))
    assert [(s.health_state, s.port) for s in health.health_status] == [("HEALTHY", 443)] * 2


def test_reapply_makes_no_mutating_request(cloud) -> None:
    check_reapply_makes_no_mutating_request(*cloud)


def test_destroy_leaves_nothing_the_plan_made(cloud) -> None:
    check_destroy_leaves_nothing(*cloud, (PROJECT,))


def test_day_2_named_ports_and_size_change_in_place(tmp_path: Path) -> None:
    with Emulator() as emu:
        dep = orchestrator.load(PLAN, emulator=emu, state_dir=tmp_path / ".provision")
        assert dep.apply().ok
        changed = tmp_path / "bridge.yaml"
        changed.write_text(PLAN.read_text().replace(
            "namedPorts: [{name: https, port: 443}]",
            "namedPorts: [{name: https, port: 443}, {name: health, port: 8443}]"))
        edited = orchestrator.load(changed, emulator=emu, state_dir=tmp_path / ".provision",
                                   vars={"bridge_min": "3"})
        plan = edited.plan_changes()
        assert {c.step: c.action for c in plan.steps if c.action != "noop"} == {
            "bridge-group": "update", "bridge-autoscaler": "update"}
        before = len(emu.requests())
        result = edited.apply()
        assert result.ok, [(f.step, f.message) for f in result.failures]
        mutating = sorted(r["method"] for r in emu.requests()[before:] if r["mutating"])
        assert mutating == ["compute.regionAutoscalers.patch",
                            "compute.regionInstanceGroupManagers.patch",
                            "compute.regionInstanceGroups.setNamedPorts"]
        groups = compute(emu, "RegionInstanceGroupManagersClient")
        group = groups.get(project=PROJECT, region=REGION, instance_group_manager="apigee-bridge")
        # The autoscaler's new minimum: a third VM, made from then on at Google's pace.
        assert group.target_size == 3 and group.current_actions.creating == 1
        assert [p.port for p in group.named_ports] == [443, 8443]
        emu.skip(60)
        assert groups.get(project=PROJECT, region=REGION,
                          instance_group_manager="apigee-bridge").status.is_stable
        destroyed = edited.destroy()
        assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        edited.close()
        dep.close()


def _mutating(emu: Emulator, dep: object, before: int) -> list[str]:
    return sorted(r["method"] for r in emu.requests()[before:] if r["mutating"])


@pytest.mark.parametrize(("old", "new", "planned", "sent"), [
    # the named ports alone: one setNamedPorts, no patch of the group
    ("namedPorts: [{name: https, port: 443}]", "namedPorts: [{name: https, port: 8443}]",
     {"bridge-group": "update"}, ["compute.regionInstanceGroups.setNamedPorts"]),
    # a plan that stops naming them leaves them as they are
    ("      namedPorts: [{name: https, port: 443}]\n", "", {}, []),
    # another type of health check: the whole check is replaced in place (PUT)
    ("type: HTTPS\n      # Apigee's own health endpoint, through the bridge: Google's probes "
     "send the\n      # User-Agent GoogleHC it answers to.\n"
     "      httpsHealthCheck: {port: 443, requestPath: /healthz/ingress}",
     "type: TCP\n      tcpHealthCheck: {port: 443}",
     {"bridge-health-check": "update"}, ["compute.healthChecks.update"]),
])
def test_day_2_changes_make_the_calls_the_plan_says(
        old: str, new: str, planned: dict, sent: list, tmp_path: Path) -> None:
    with Emulator() as emu:
        state = tmp_path / ".provision"
        assert orchestrator.load(PLAN, emulator=emu, state_dir=state).apply().ok
        changed = tmp_path / "bridge.yaml"
        text = PLAN.read_text()
        assert old in text
        changed.write_text(text.replace(old, new))
        dep = orchestrator.load(changed, emulator=emu, state_dir=state)
        preview = dep.plan_changes()
        assert {c.step: c.action for c in preview.steps if c.action != "noop"} == planned
        before = len(emu.requests())
        result = dep.apply(approved=preview)
        assert result.ok, [(f.step, f.message) for f in result.failures]
        assert _mutating(emu, dep, before) == sent
        assert not dep.plan_changes().has_changes
        group = compute(emu, "RegionInstanceGroupsClient").get(
            project=PROJECT, region=REGION, instance_group="apigee-bridge")
        assert [p.port for p in group.named_ports] == [8443 if "8443" in new else 443]
