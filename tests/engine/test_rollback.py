"""Rollback puts back what the last apply changed, and a rollback stopped halfway does so when
run again: the values to restore and the resources to make again stay in the ledger until
they are restored."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from provision_emulator import Emulator

from .conftest import BASICS, mutating
from .test_apply import LONE_TUNNEL

SECRET = "PROVISION_TEST_TUNNEL_SECRET"


def _live(emulator: Emulator, kind: str, name: str) -> dict:
    found = [r for path, r in emulator.dump()["resources"]["compute"].items()
             if f"/{kind}/{name}" in path and path.endswith(name)]
    assert len(found) <= 1
    return found[0]["body"] if found else {}


def test_a_restore_that_failed_restores_the_previous_values_when_run_again(
    emulator: Emulator, deploy
) -> None:
    assert deploy().apply().ok
    assert deploy(vars={"sources": "10.99.0.0/16"}).apply().ok
    emulator.set_faults(operation_failure=1.0, methods=["compute.firewalls.patch"])
    first = deploy(vars={"sources": "10.99.0.0/16"}).rollback()
    assert [f.step for f in first.failures] == ["fw"]
    emulator.set_faults(operation_failure=0.0, methods=[])
    again = deploy(vars={"sources": "10.99.0.0/16"}).rollback()
    assert again.ok and again.actions == {"fw": "restore"}
    assert _live(emulator, "firewalls", "eng-allow-internal")["sourceRanges"] == ["10.10.0.0/24"]
    assert not deploy().plan_changes().has_changes


def test_a_rollback_of_a_replace_makes_the_original_again(emulator: Emulator, deploy) -> None:
    assert deploy().apply().ok
    replaced = deploy(vars={"range": "10.30.0.0/24"}).apply()
    assert replaced.ok and replaced.actions["subnet"] == "replace"
    before = len(emulator.requests())
    result = deploy(vars={"range": "10.30.0.0/24"}).rollback()
    assert result.ok and result.actions == {"subnet": "recreate"}
    assert [r["method"] for r in mutating(emulator, before)] == [
        "compute.subnetworks.delete", "compute.subnetworks.insert"]
    assert _live(emulator, "subnetworks", "eng-subnet")["ipCidrRange"] == "10.10.0.0/24"
    dep = deploy()
    assert not dep.plan_changes().has_changes
    record = dep.ledger().resources["subnet"]
    assert (record.created_run, record.replaced) == (1, None)


def test_a_rollback_of_a_move_makes_the_original_again_where_it_was(
    emulator: Emulator, deploy
) -> None:
    assert deploy().apply().ok
    assert deploy(vars={"region": "us-central1"}).apply().ok
    result = deploy(vars={"region": "us-central1"}).rollback()
    assert result.ok, result.failures
    assert _live(emulator, "subnetworks", "eng-subnet")["region"].endswith("europe-west1")
    assert not deploy().plan_changes().has_changes


def test_a_rollback_that_needs_a_rotated_secret_says_so_and_deletes_nothing(
    emulator: Emulator, deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET, "the-first-secret")
    assert deploy(LONE_TUNNEL, readiness=False).apply().ok
    monkeypatch.setenv(SECRET, "the-rotated-secret")
    rotated = deploy(LONE_TUNNEL, readiness=False).apply()
    assert rotated.ok and rotated.actions["tunnel"] == "replace"

    before = len(emulator.requests())
    with pytest.raises(Exception, match="needs the sharedSecret it had") as refused:
        deploy(LONE_TUNNEL, readiness=False).rollback()
    assert "Nothing was rolled back" in str(refused.value)
    assert "the-rotated-secret" not in str(refused.value)
    assert mutating(emulator, before) == []

    monkeypatch.setenv(SECRET, "the-first-secret")
    result = deploy(LONE_TUNNEL, readiness=False).rollback()
    assert result.ok and result.actions == {"tunnel": "recreate"}
    assert _live(emulator, "vpnTunnels", "tunnel")["sharedSecret"] == "the-first-secret"
    assert not deploy(LONE_TUNNEL, readiness=False).plan_changes().has_changes


def test_rollbacks_of_two_replaces_in_turn_make_each_original_again(
    emulator: Emulator, deploy
) -> None:
    assert deploy().apply().ok
    assert deploy(vars={"range": "10.30.0.0/24"}).apply().ok
    assert deploy(vars={"range": "10.40.0.0/24"}).apply().ok
    assert deploy(vars={"range": "10.40.0.0/24"}).rollback().ok
    assert _live(emulator, "subnetworks", "eng-subnet")["ipCidrRange"] == "10.30.0.0/24"
    assert deploy(vars={"range": "10.30.0.0/24"}).rollback().ok
    assert _live(emulator, "subnetworks", "eng-subnet")["ipCidrRange"] == "10.10.0.0/24"
    assert not deploy().plan_changes().has_changes


def _firewalls(emulator: Emulator) -> tuple[compute_v1.FirewallsClient, Any]:
    options = ClientOptions(api_endpoint=f"{emulator.url}/compute")
    firewalls = compute_v1.FirewallsClient(credentials=AnonymousCredentials(),
                                           client_options=options)
    operations = compute_v1.GlobalOperationsClient(credentials=AnonymousCredentials(),
                                                   client_options=options)
    return firewalls, lambda op: operations.wait(project="eng-project", operation=op.name)


def _delete_outside(emulator: Emulator, deploy) -> None:
    """The firewall deleted outside provision (with Google's client), and a refresh that finds
    it gone."""
    firewalls, wait = _firewalls(emulator)
    wait(firewalls.delete_unary(project="eng-project", firewall="eng-allow-internal"))
    refreshed = deploy().refresh()
    assert refreshed.actions["fw"] == "gone"


def test_a_step_found_gone_and_then_removed_leaves_no_record(emulator: Emulator, deploy) -> None:
    assert deploy().apply().ok
    _delete_outside(emulator, deploy)
    without_fw = BASICS[: BASICS.index("  - id: fw")]
    assert deploy(without_fw).apply().ok
    dep = deploy(without_fw)
    assert "fw" not in dep.ledger().resources
    assert not dep.plan_changes().has_changes


def test_a_step_found_gone_and_renamed_onto_anothers_resource_does_not_take_it(
    emulator: Emulator, deploy
) -> None:
    assert deploy().apply().ok
    _delete_outside(emulator, deploy)
    firewalls, wait = _firewalls(emulator)
    wait(firewalls.insert_unary(project="eng-project", firewall_resource=compute_v1.Firewall(
        name="their-firewall", network="global/networks/eng-vpc", source_ranges=["10.0.0.0/8"],
        allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["22"])])))
    renamed = deploy(BASICS.replace("eng-allow-internal", "their-firewall")).apply()
    assert [f.step for f in renamed.failures] == ["fw"]
    assert "does not own it" in renamed.failures[0].message
    assert _live(emulator, "firewalls", "their-firewall")["sourceRanges"] == ["10.0.0.0/8"]
