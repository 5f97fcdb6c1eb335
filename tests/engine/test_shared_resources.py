"""Resources a step does not own alone: an enabled API belongs to its project. Apply adopts one
found enabled, destroy leaves it enabled and says so, and apply, destroy, apply works."""

from __future__ import annotations

from provision_emulator import Emulator

PLAN = """
name: shared
defaults:
  project: shared-project
steps:
  - {id: api-compute, kind: serviceusage.service, name: compute.googleapis.com}
  - id: vpc
    kind: compute.network
    name: shared-vpc
    depends_on: [api-compute]
    properties: {autoCreateSubnetworks: false}
"""
SERVICE = "projects/shared-project/services/compute.googleapis.com"


def _enabled(emulator: Emulator) -> bool:
    found = emulator.dump()["resources"].get("serviceusage", {}).get(SERVICE)
    return bool(found) and found["body"]["state"] == "ENABLED"


def test_destroy_leaves_the_api_enabled_and_apply_works_again(emulator, deploy) -> None:
    events: list = []
    dep = deploy(PLAN, on_event=events.append)
    assert dep.apply().ok

    destroyed = dep.destroy()
    assert destroyed.ok and destroyed.actions == {"vpc": "delete", "api-compute": "leave"}
    left = [e for e in events if e.type == "step_finished" and e.step == "api-compute"][-1]
    assert (left.action, left.message) == ("leave", "left enabled")
    assert dep.ledger().resources == {} and _enabled(emulator)

    again = dep.apply()
    assert again.ok, again.failures
    assert again.actions == {"api-compute": "noop", "vpc": "create"}
    assert dep.ledger().resources["api-compute"].origin == "adopted"


def test_an_api_enabled_by_hand_is_adopted_without_import(emulator, deploy) -> None:
    dep = deploy(PLAN)
    usage = dep.clients.discovery("serviceusage")
    op = usage.services().enable(name=SERVICE, body={}).execute()
    while not op.get("done"):
        op = usage.operations().get(name=op["name"]).execute()
    planned = {c.step: c.action for c in dep.plan_changes().steps}
    assert planned == {"api-compute": "noop", "vpc": "create"}
    result = dep.apply()
    assert result.ok and result.actions["api-compute"] == "noop"
