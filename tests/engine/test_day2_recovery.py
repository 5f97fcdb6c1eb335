"""Day-2 changes meeting what went wrong before: a run killed halfway through a replace, a
delete Google failed, a resource taken over without a record, dependencies that changed
direction."""

from __future__ import annotations

from orchestrator.ledger import LocalStore, Operation
from orchestrator.ledger.model import now

from .conftest import BASICS, mutating
from .test_day2 import WITH_ADDRESS, zone

NETWORK = """
  - id: {id}
    kind: compute.network
    name: {name}
    properties: {{autoCreateSubnetworks: {auto}}}
"""


def _methods(emulator, since: int) -> list[str]:
    return [r["method"] for r in mutating(emulator, since)]


def test_a_removed_network_goes_after_the_zone_is_updated_to_its_successor(
    emulator, deploy
) -> None:
    head = "name: basics\ndefaults: {project: p1, region: europe-west1}\nsteps:"
    old = head + NETWORK.format(id="vpc-a", name="vpc-a", auto="false") + zone(
        "zone", "zone", "vpc-a")
    assert deploy(old).apply().ok
    new = head + NETWORK.format(id="vpc-b", name="vpc-b", auto="false") + zone(
        "zone", "zone", "vpc-b")
    before = len(emulator.requests())
    result = deploy(new).apply()
    assert result.ok and result.actions == {
        "vpc-b": "create", "zone": "update", "vpc-a": "delete"}
    assert _methods(emulator, before) == [
        "compute.networks.insert", "dns.managedZones.patch", "compute.networks.delete"]


def test_replaced_steps_whose_dependency_turned_around_go_in_the_recorded_order(
    emulator, deploy
) -> None:
    head = "name: basics\ndefaults: {project: p1, region: europe-west1}\nsteps:"
    old = head + NETWORK.format(id="a", name="net-a", auto="false") + NETWORK.format(
        id="b", name="net-b", auto="false") + "    depends_on: [a]\n"
    assert deploy(old).apply().ok
    new = head + NETWORK.format(id="b", name="net-b", auto="true") + NETWORK.format(
        id="a", name="net-a", auto="true") + "    depends_on: [b]\n"
    before = len(emulator.requests())
    result = deploy(new).apply()
    assert result.ok and result.actions == {"a": "replace", "b": "replace"}
    deleted = [r["path"].rsplit("/", 1)[1] for r in mutating(emulator, before)
               if r["method"].endswith(".delete")]
    assert deleted == ["net-b", "net-a"]  # b used a when they were made


def _killed_before_the_delete_call(deploy, step: str) -> None:
    """The ledger as a run leaves it killed between its write-ahead and its delete call (or
    after the call, before recording its operation)."""
    store = LocalStore(deploy().ledger_location)
    with store.lock(command="test"):
        ledger = store.load()
        ledger.resources[step].status = "deleting"
        ledger.resources[step].operation = Operation("", "compute", "delete", now())
        store.save(ledger)


def test_a_replace_killed_before_its_delete_finishes_both_halves(emulator, deploy) -> None:
    assert deploy().apply().ok
    _killed_before_the_delete_call(deploy, "subnet")
    dep = deploy(vars={"range": "10.30.0.0/24"})
    subnet = next(c for c in dep.plan_changes().steps if c.step == "subnet")
    assert (subnet.action, subnet.reason) == ("replace", "resume: delete")
    result = dep.apply()
    assert result.ok and result.actions["subnet"] == "replace"
    assert dep.ledger().resources["subnet"].spec["ipCidrRange"] == "10.30.0.0/24"
    assert not dep.plan_changes().has_changes


def test_a_move_killed_before_its_delete_leaves_nothing_behind(emulator, deploy) -> None:
    assert deploy().apply().ok
    _killed_before_the_delete_call(deploy, "subnet")
    dep = deploy(vars={"region": "us-central1"})
    before = len(emulator.requests())
    assert dep.apply().ok
    assert [(r["method"], "europe-west1" in r["path"]) for r in mutating(emulator, before)] == [
        ("compute.subnetworks.delete", True), ("compute.subnetworks.insert", False)]
    assert not dep.plan_changes().has_changes


def test_a_removed_step_whose_delete_failed_says_so_and_is_deleted_next_time(
    emulator, deploy
) -> None:
    assert deploy().apply().ok
    without_fw = BASICS[: BASICS.index("  - id: fw")]
    emulator.set_faults(operation_failure=1.0, methods=["compute.firewalls.delete"])
    result = deploy(without_fw).apply()
    assert not result.ok and [f.step for f in result.failures] == ["fw"]
    assert deploy(without_fw).ledger().runs[-1].result == "failed"
    emulator.set_faults(operation_failure=0.0)
    before = len(emulator.requests())
    result = deploy(without_fw).apply()
    assert result.ok and result.actions["fw"] == "delete"
    assert _methods(emulator, before) == ["compute.firewalls.delete"]
    assert "fw" not in deploy(without_fw).ledger().resources


def test_a_resource_taken_over_unrecorded_is_replaced_with_what_it_uses(emulator, deploy) -> None:
    assert deploy(WITH_ADDRESS).apply().ok
    assert deploy(WITH_ADDRESS).forget("address").ok
    dep = deploy(WITH_ADDRESS, vars={"range": "10.30.0.0/24"})
    address = next(c for c in dep.plan_changes().steps if c.step == "address")
    assert (address.action, address.because) == ("replace", "subnet")
    result = dep.apply()
    assert result.ok and result.actions["address"] == "replace"
    assert not dep.plan_changes().has_changes


def test_a_router_asn_is_fixed_inside_its_mutable_bgp() -> None:
    from orchestrator import kinds

    router = kinds.get("compute.router")
    assert router.changes_in_place("bgp.advertisedIpRanges")
    assert not router.changes_in_place("bgp.asn")
    assert not router.changes_in_place("network")
