"""Rollback puts back what the last apply changed, and a rollback stopped halfway does so when
run again: the values to restore and the resources to make again stay in the ledger until
they are restored."""

from __future__ import annotations

import pytest

from orchestrator.emulator import Emulator

from .conftest import mutating
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
