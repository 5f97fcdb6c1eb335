"""The scheduler: dependency order, bounded parallelism, failures stop only dependents."""

from __future__ import annotations

import threading

import pytest

from orchestrator.engine.scheduler import run_graph


def _recorder():
    started: list[str] = []
    lock = threading.Lock()

    def task(tid: str) -> None:
        with lock:
            started.append(tid)
        if tid.startswith("bad"):
            raise RuntimeError(f"{tid} failed")

    return started, task


def test_parallelism_one_runs_in_file_order() -> None:
    order = ["a", "b", "c", "d", "e"]
    deps = {"b": set(), "c": {"a"}, "d": {"b"}, "e": {"c", "d"}}
    started, task = _recorder()
    outcome = run_graph(order, deps, task, parallelism=1)
    assert started == order
    assert outcome.ok


def test_never_before_dependencies_and_runs_independent_work_at_once() -> None:
    # Two independent chains; a barrier proves both heads run concurrently, and the log
    # proves no step starts before its dependency finished.
    barrier = threading.Barrier(2, timeout=5)
    finished: set[str] = set()
    lock = threading.Lock()
    violations: list[str] = []
    deps = {"a1": set(), "b1": set(), "a2": {"a1"}, "b2": {"b1"}}

    def task(tid: str) -> None:
        with lock:
            if not deps[tid] <= finished:
                violations.append(tid)
        if tid in ("a1", "b1"):
            barrier.wait()
        with lock:
            finished.add(tid)

    outcome = run_graph(["a1", "a2", "b1", "b2"], deps, task, parallelism=4)
    assert outcome.ok and not violations
    assert set(outcome.succeeded) == {"a1", "a2", "b1", "b2"}


def test_parallelism_bound_is_respected() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def task(tid: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == 3:
                gate.set()
        gate.wait(timeout=5)
        with lock:
            running -= 1

    order = [f"s{i}" for i in range(10)]
    outcome = run_graph(order, {}, task, parallelism=3)
    assert outcome.ok
    assert peak == 3


def test_failure_skips_only_dependents() -> None:
    order = ["bad", "child", "grandchild", "other", "other-child"]
    deps = {"child": {"bad"}, "grandchild": {"child"}, "other-child": {"other"}}
    started, task = _recorder()
    outcome = run_graph(order, deps, task, parallelism=2)
    assert set(outcome.failed) == {"bad"}
    assert outcome.skipped == {"child": "bad", "grandchild": "bad"}
    assert sorted(outcome.succeeded) == ["other", "other-child"]
    assert "child" not in started and "grandchild" not in started


def test_stop_event_starts_nothing_new() -> None:
    stop = threading.Event()

    def task(tid: str) -> None:
        stop.set()

    outcome = run_graph(["a", "b", "c"], {}, task, parallelism=1, stop=stop)
    assert outcome.succeeded == ["a"]
    assert outcome.cancelled == ["b", "c"]


@pytest.mark.parametrize("parallelism", [1, 8])
def test_failed_task_error_is_kept(parallelism: int) -> None:
    _, task = _recorder()
    outcome = run_graph(["bad"], {}, task, parallelism=parallelism)
    assert str(outcome.failed["bad"]) == "bad failed"
