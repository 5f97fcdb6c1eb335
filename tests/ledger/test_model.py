from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from orchestrator.ledger import Ledger, Run
from orchestrator.ledger.model import KEEP_EVENTS, KEEP_RUNS


def test_round_trip_through_json(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger(4)
    again = Ledger.from_dict(json.loads(json.dumps(ledger.to_dict())))
    assert again == ledger


def test_new_ledgers_have_their_own_lineage() -> None:
    a, b = Ledger.new("net"), Ledger.new("net")
    assert a.lineage != b.lineage and len(a.lineage) == 32
    assert (a.serial, a.format, a.plan, a.resources, a.runs) == (0, 1, "net", {}, [])


def test_runs_are_numbered_and_found() -> None:
    ledger = Ledger.new("net")
    apply = ledger.begin_run("apply")
    refresh = ledger.begin_run("refresh")
    assert (apply.id, refresh.id) == (1, 2)
    assert ledger.last_run() is refresh
    assert ledger.last_run("apply") is apply
    assert ledger.last_run("destroy") is None
    assert apply.result == "running" and apply.finished is None
    apply.act("net", "create", "succeeded")
    apply.finish("succeeded")
    assert apply.result == "succeeded" and apply.finished is not None
    assert [a.to_dict() for a in apply.actions] == [
        {"step_id": "net", "action": "create", "result": "succeeded"}
    ]


def test_record_is_none_for_an_unknown_step(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger(2)
    assert ledger.record("subnet-1") is ledger.resources["subnet-1"]
    assert ledger.record("nope") is None


def test_runs_left_running_are_closed_as_interrupted() -> None:
    ledger = Ledger.new("net")
    done = ledger.begin_run("apply")
    done.finish("failed")
    killed = ledger.begin_run("apply")
    assert ledger.close_interrupted_runs() == [killed]
    assert (done.result, killed.result) == ("failed", "interrupted")


def test_history_is_bounded() -> None:
    ledger = Ledger.new("net")
    for _ in range(KEEP_RUNS + 7):
        run: Run = ledger.begin_run("apply")
        run.events.append({"type": "x"})
        run.act("net", "create", "succeeded")
    assert len(ledger.runs) == KEEP_RUNS
    assert ledger.runs[-1].id == KEEP_RUNS + 7
    assert all(run.actions for run in ledger.runs)
    assert [bool(run.events) for run in ledger.runs].count(True) == KEEP_EVENTS


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("resources", "subnet-0", "status"), "vanished",
         "resources.subnet-0.status: 'vanished' is not"),
        (("resources", "subnet-0", "step_id"), "other", "step_id is 'other'"),
        (("resources", "subnet-0", "spec"), [], "resources.subnet-0.spec: expected dict"),
        (("resources", "subnet-0", "created_run"), True, "created_run: expected int, found bool"),
        (("resources", "subnet-0", "operation", "action"), "x", "operation.action: 'x'"),
        (("runs", 0, "events"), [1], "runs[0].events[0]: expected an object, found int"),
        (("runs", 0, "result"), None, "runs[0].result: expected str, found null"),
        (("serial",), -1, "serial: -1 is negative"),
        (("format",), 0, "format: 0 is not 1"),
    ],
)
def test_invalid_fields_are_named(
    make_ledger: Callable[..., Ledger], path: tuple, value: object, message: str
) -> None:
    data = make_ledger(1).to_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError) as caught:
        Ledger.from_dict(data)
    assert message in str(caught.value)


def test_a_missing_field_is_named(make_ledger: Callable[..., Ledger]) -> None:
    data = make_ledger(1).to_dict()
    del data["resources"]["subnet-0"]["kind"]
    with pytest.raises(ValueError, match=r"resources\.subnet-0\.kind: missing"):
        Ledger.from_dict(data)
