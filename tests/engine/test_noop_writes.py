"""A no-op re-apply writes the ledger only to record the run, not once per unchanged step."""

from __future__ import annotations

from .conftest import BASICS


def _count_saves(dep) -> list[int]:
    saves = [0]
    stage = dep.store.stage

    def counting(ledger, changed=None):
        saves[0] += 1
        return stage(ledger, changed)

    dep.store.stage = counting
    return saves


def test_reapply_writes_the_ledger_for_the_run_only(deploy) -> None:
    dep = deploy(BASICS)
    saves = _count_saves(dep)
    assert dep.apply().ok
    per_apply = saves[0]
    assert per_apply > 2 * len(dep.plan.steps)  # an apply records every step
    # The network's outputs gained the subnetwork made after it: the first re-apply records
    # that; the next finds everything as recorded.
    assert dep.apply().ok
    saves[0] = 0
    result = dep.apply()
    assert set(result.actions.values()) == {"noop"}
    assert saves[0] == 2  # the run's start and its end


def test_a_noop_step_whose_outputs_changed_is_still_recorded(deploy) -> None:
    dep = deploy(BASICS)
    assert dep.apply().ok
    assert dep.ledger().resources["vpc"].outputs["subnetworks"] == []
    assert dep.apply().ok
    assert dep.ledger().resources["vpc"].outputs["subnetworks"][0].endswith("/eng-subnet")
