"""Changing what exists: the plan says what apply does, and apply does just that."""

from __future__ import annotations

import pytest

from orchestrator.engine.steps import InvalidRequest

from .conftest import BASICS, mutating

# A private zone: ID, NAME and NETWORK (a step id) filled in.
ZONE = """
  - id: ID
    kind: dns.managed_zone
    name: NAME
    properties:
      dnsName: eng.example.com.
      description: eng
      visibility: private
      privateVisibilityConfig:
        networks: [{networkUrl: "${NETWORK.selfLink}"}]"""


def zone(step_id: str, name: str, network: str) -> str:
    return ZONE.replace("ID", step_id).replace("NAME", name).replace("NETWORK", network)


WITH_ADDRESS = BASICS + """
  - id: address
    kind: compute.address
    name: eng-address
    properties:
      addressType: INTERNAL
      subnetwork: ${subnet.selfLink}""" + zone("record-zone", "eng-zone", "vpc") + """
  - id: record
    kind: dns.record_set
    name: api.eng.example.com.
    managed_zone: ${record-zone.name}
    properties:
      type: A
      ttl: 300
      rrdatas: ["${address.address}"]
"""


def _actions(preview) -> dict[str, str]:
    return {c.step: c.action for c in preview.steps if c.action != "noop"}


def test_a_replaced_subnet_takes_the_address_that_uses_it_and_updates_what_copies_its_ip(
    emulator, deploy
) -> None:
    assert deploy(WITH_ADDRESS).apply().ok
    dep = deploy(WITH_ADDRESS, vars={"range": "10.30.0.0/24"})
    plan = dep.plan_changes()
    steps = {c.step: c for c in plan.steps}
    assert _actions(plan) == {"subnet": "replace", "address": "replace", "record": "update"}
    assert steps["address"].reason == "replaced because subnet is replaced"
    assert steps["address"].because == "subnet"
    assert [c.field for c in steps["record"].changes] == ["rrdatas"]
    before = len(emulator.requests())
    result = dep.apply()
    assert result.ok, result.failures
    assert {s: a for s, a in result.actions.items() if a != "noop"} == _actions(plan)
    methods = [r["method"] for r in mutating(emulator, before)]
    # Dependents go first; creation runs the other way.
    assert methods[:2] == ["compute.addresses.delete", "compute.subnetworks.delete"]
    assert methods[2:4] == ["compute.subnetworks.insert", "compute.addresses.insert"]
    assert methods[4:] == ["dns.changes.create"]
    assert not dep.plan_changes().has_changes


def test_a_changed_region_moves_the_subnet_and_says_so(emulator, deploy) -> None:
    assert deploy().apply().ok
    dep = deploy(vars={"region": "us-central1"})
    plan = dep.plan_changes()
    subnet = next(c for c in plan.steps if c.step == "subnet")
    assert subnet.action == "replace"
    assert subnet.previous == "projects/eng-project/regions/europe-west1/subnetworks/eng-subnet"
    assert subnet.reason == (f"moves from {subnet.previous} to "
                             "projects/eng-project/regions/us-central1/subnetworks/eng-subnet")
    events = []
    dep.on_event = events.append
    before = len(emulator.requests())
    result = dep.apply()
    assert result.ok and result.actions["subnet"] == "replace"
    deleted = [r["path"] for r in mutating(emulator, before) if r["method"].endswith(".delete")]
    assert len(deleted) == 1 and "/regions/europe-west1/subnetworks/eng-subnet" in deleted[0]
    started = [e for e in events if e.type == "step_started" and e.step == "subnet"]
    assert [e.action for e in started] == ["replace"]
    assert not dep.plan_changes().has_changes


RENAMED = BASICS.replace("id: subnet", "id: subnet-a")


def test_a_renamed_step_without_moved_is_refused_before_any_call(emulator, deploy) -> None:
    assert deploy().apply().ok
    dep = deploy(RENAMED)
    before = len(emulator.requests())
    with pytest.raises(InvalidRequest, match=r"(?s)moved:.*from: subnet, to: subnet-a"):
        dep.plan_changes()
    with pytest.raises(InvalidRequest, match="provision ledger mv subnet subnet-a"):
        dep.apply()
    assert mutating(emulator, before) == []
    assert "subnet" in dep.ledger().resources


def test_moved_puts_the_record_under_the_new_step_without_a_call(emulator, deploy) -> None:
    assert deploy().apply().ok
    dep = deploy(RENAMED + "moved:\n  - {from: subnet, to: subnet-a}\n")
    plan = dep.plan_changes()
    change = next(c for c in plan.steps if c.step == "subnet-a")
    assert (change.action, change.moved_from) == ("noop", "subnet")
    assert plan.has_changes and "1 to move in the ledger" in plan.summary
    before = len(emulator.requests())
    assert dep.apply().ok
    assert mutating(emulator, before) == []
    records = dep.ledger().resources
    assert "subnet" not in records and records["subnet-a"].origin == "created"
    assert not dep.plan_changes().has_changes  # the entry may stay in the file


def test_ledger_mv_and_import_move_the_record_and_ledger_rm_forgets(emulator, deploy) -> None:
    assert deploy().apply().ok
    dep = deploy(RENAMED)
    assert dep.move("subnet", "subnet-a").actions == {"subnet-a": "move"}
    assert not dep.plan_changes().has_changes
    # Back under the old id through import: the record moves, no second owner appears.
    old = deploy()
    path = old.ledger().resources["subnet-a"].path
    assert old.import_resource("subnet", path).ok
    assert set(old.ledger().resources) == {"vpc", "subnet", "fw"}
    assert not old.plan_changes().has_changes
    with pytest.raises(InvalidRequest, match="records no step 'subnt'.*did you mean subnet"):
        old.forget("subnt")
    before = len(emulator.requests())
    assert old.forget("fw").actions == {"fw": "forget"}
    assert mutating(emulator, before) == []
    assert "fw" not in old.ledger().resources
    # Handed over: the step leaves the plan, and the firewall stays where it is.
    handed = deploy(BASICS[: BASICS.index("  - id: fw")])
    assert not handed.plan_changes().has_changes
    assert handed.apply().ok and mutating(emulator, before) == []


def test_a_ledger_made_for_another_plan_is_refused(emulator, deploy) -> None:
    dep = deploy()
    assert dep.apply().ok
    other = deploy(BASICS.replace("name: basics", "name: other"),
                   ledger=dep.ledger_location)
    before = len(emulator.requests())
    with pytest.raises(InvalidRequest, match="made for plan 'basics', not 'other'"):
        other.apply()
    assert emulator.requests()[before:] == []


def test_a_removed_step_is_planned_as_removed_and_deleted(emulator, deploy) -> None:
    assert deploy().apply().ok
    without_fw = BASICS[: BASICS.index("  - id: fw")]
    dep = deploy(without_fw)
    plan = dep.plan_changes()
    fw = next(c for c in plan.steps if c.step == "fw")
    assert (fw.action, fw.reason) == ("delete", "removed from the plan")
    before = len(emulator.requests())
    result = dep.apply()
    assert result.ok and result.actions["fw"] == "delete"
    assert [r["method"] for r in mutating(emulator, before)] == ["compute.firewalls.delete"]


def test_an_approved_plan_is_done_exactly_or_refused_when_the_cloud_changed(
    emulator, deploy
) -> None:
    assert deploy().apply().ok
    dep = deploy(vars={"sources": "10.20.0.0/24"})
    approved = dep.plan_changes()
    assert _actions(approved) == {"fw": "update"}
    # Someone changes the subnet meanwhile: the plan was not made from what is live now.
    other = deploy(vars={"range": "10.40.0.0/24"})
    assert other.apply().ok
    before = len(emulator.requests())
    with pytest.raises(InvalidRequest, match=r"serial \d+; it is at \d+ now"):
        dep.apply(approved=approved)
    assert mutating(emulator, before) == []
    fresh = deploy(vars={"sources": "10.20.0.0/24"})
    approved = fresh.plan_changes()
    assert _actions(approved) == {"fw": "update", "subnet": "replace"}
    result = fresh.apply(approved=approved)
    assert result.ok and {s: a for s, a in result.actions.items() if a != "noop"} == {
        "fw": "update", "subnet": "replace"}


def test_targets_plan_apply_and_destroy_only_what_they_name(emulator, deploy) -> None:
    assert deploy().apply().ok
    both = {"range": "10.30.0.0/24", "sources": "10.30.0.0/24"}
    assert _actions(deploy(vars=both).plan_changes()) == {"subnet": "replace", "fw": "update"}
    targeted = deploy(vars=both, targets=("subnet",))
    plan = targeted.plan_changes()
    assert [c.step for c in plan.steps] == ["vpc", "subnet"]
    before = len(emulator.requests())
    assert targeted.apply().actions == {"vpc": "noop", "subnet": "replace"}
    assert {r["method"] for r in mutating(emulator, before)} == {
        "compute.subnetworks.delete", "compute.subnetworks.insert"}
    assert _actions(deploy(vars=both).plan_changes()) == {"fw": "update"}
    with pytest.raises(InvalidRequest, match="--target subnt: .*did you mean subnet"):
        deploy(targets=("subnt",)).plan_changes()
    # Destroy takes what needs the target with it, and nothing else.
    result = deploy(targets=("subnet",)).destroy()
    assert result.ok and set(result.actions) == {"subnet"}
    result = deploy(targets=("vpc",)).destroy()
    assert result.ok and set(result.actions) == {"vpc", "fw"}


POOL = """name: pool
steps:
  - id: pool
    kind: privateca.ca_pool
    name: backends
    project: eng-project
    region: europe-west1
    properties: {tier: "${vars.tier}"}
  - id: requester
    kind: privateca.ca_pool_iam_member
    name: backends
    project: eng-project
    region: europe-west1
    properties: {role: roles/privateca.certificateRequester, member: "user:a@example.com"}
    depends_on: [pool]
vars: {tier: DEVOPS}
"""


def test_a_step_named_under_a_replaced_resource_goes_with_it(emulator, deploy) -> None:
    """A pool's IAM member names the pool literally, not by reference: it lives under the
    pool's path, and a replaced pool takes its policy with it, so the member is replaced too
    (not found missing by the next plan)."""
    assert deploy(POOL).apply().ok
    dep = deploy(POOL, vars={"tier": "ENTERPRISE"})
    plan = dep.plan_changes()
    assert _actions(plan) == {"pool": "replace", "requester": "replace"}
    assert dep.apply().ok
    assert not dep.plan_changes().has_changes
