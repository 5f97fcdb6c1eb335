"""The ownership marker: what a run made but did not record is adopted; a stranger's resource
of the same name is not."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.ledger import LocalStore
from provision_emulator import Emulator

from .conftest import mutating


def _forget(dep, step_id: str) -> None:
    """Drop one record from the ledger, as a run killed between Google's answer and the
    ledger write would have left it."""
    store = LocalStore(dep.ledger_location)
    with store.lock(command="test"):
        ledger = store.load()
        del ledger.resources[step_id]
        store.save(ledger)


def test_created_but_unrecorded_resources_are_adopted_without_a_call(
    emulator: Emulator, deploy
) -> None:
    dep = deploy()
    assert dep.apply().ok
    _forget(dep, "vpc")
    _forget(dep, "fw")
    before = len(emulator.requests())
    result = dep.apply()
    assert result.ok, result.failures
    assert mutating(emulator, before) == []
    ledger = dep.ledger()
    assert ledger.resources["vpc"].origin == "adopted"
    assert ledger.resources["fw"].origin == "adopted"


def test_a_resource_someone_else_made_is_refused_with_the_import_command(
    emulator: Emulator, deploy
) -> None:
    first = deploy()
    assert first.apply().ok
    # Same names, another ledger (another lineage): not ours to take.
    second = deploy(state_dir=first.state_dir.parent / "elsewhere")
    result = second.apply()
    assert not result.ok
    assert " vpc projects/eng-project/global/networks/eng-vpc" in result.failures[0].message


def test_marker_is_invisible_to_the_diff(emulator: Emulator, deploy) -> None:
    dep = deploy()
    assert dep.apply().ok
    live = dep.outputs()["vpc"]
    assert "[provision:" in live["description"]
    assert not dep.plan_changes().has_changes
    ledger = json.loads(Path(dep.ledger_location).read_text())
    assert "[provision:" not in json.dumps(ledger["resources"]["vpc"]["spec"])
