"""The waiter's `poll` option: "fixed:N" polls every operation with `get`, at once and then every
N simulated seconds, never with the long-poll `wait` (the benchmark's Terraform-like baseline)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from google.cloud import compute_v1

from orchestrator.gcp.operations import OperationRef, Waiter, fixed_interval

from .conftest import BASICS


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def waiting(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class ComputeOperations:
    """An operations client whose operation is DONE at the `done_after`-th request."""

    def __init__(self, done_after: int) -> None:
        self.done_after = done_after
        self.calls: list[str] = []

    def _answer(self, verb: str) -> compute_v1.Operation:
        self.calls.append(verb)
        done = len(self.calls) >= self.done_after
        return compute_v1.Operation(name="op-1", status="DONE" if done else "RUNNING")

    def get(self, request: dict[str, Any]) -> compute_v1.Operation:
        return self._answer("get")

    def wait(self, request: dict[str, Any]) -> compute_v1.Operation:
        return self._answer("wait")


class Discovery:
    """A google-api-python-client service: records the method ids called; an operation is done
    at the `done_after`-th call."""

    def __init__(
        self, done_after: int, path: tuple[str, ...] = (), calls: list[str] | None = None
    ) -> None:
        self.done_after = done_after
        self.path = path
        self.calls = [] if calls is None else calls

    def __getattr__(self, name: str) -> Any:
        # Resources and methods alike: service.projects().locations()...get(name=...).execute()
        def method(**params: Any) -> Discovery:
            return Discovery(self.done_after, (*self.path, name), self.calls)

        return method

    def execute(self, num_retries: int = 0) -> dict[str, Any]:
        self.calls.append(".".join(self.path))
        return {"name": "operations/1", "done": len(self.calls) >= self.done_after}


class Clients:
    def __init__(self, compute: ComputeOperations | None = None,
                 discovery: Discovery | None = None) -> None:
        self._compute, self._discovery = compute, discovery

    def compute(self, client_name: str) -> ComputeOperations | None:
        return self._compute

    def discovery(self, api: str) -> Discovery | None:
        return self._discovery


COMPUTE_OP = OperationRef("compute", "compute", "op-1", project="p")
RUN_OP = OperationRef("lro", "run", "projects/p/locations/r/operations/1")


def test_fixed_polls_compute_with_get_at_once_then_every_interval() -> None:
    ops, clock = ComputeOperations(done_after=3), FakeClock()
    Waiter(Clients(compute=ops), clock, poll="fixed:10").wait(COMPUTE_OP, deadline=1000)
    assert ops.calls == ["get", "get", "get"]
    assert clock.sleeps == [10.0, 10.0]


def test_default_awaits_compute_with_the_long_poll_wait() -> None:
    ops, clock = ComputeOperations(done_after=2), FakeClock()
    Waiter(Clients(compute=ops), clock).wait(COMPUTE_OP, deadline=1000)
    assert ops.calls == ["wait", "wait"]
    assert clock.sleeps == []


def test_fixed_polls_a_longrunning_operation_with_get_though_the_api_has_wait() -> None:
    svc, clock = Discovery(done_after=4), FakeClock()
    Waiter(Clients(discovery=svc), clock, poll="fixed:10").wait(RUN_OP, deadline=1000)
    assert svc.calls == ["projects.locations.operations.get"] * 4
    assert clock.sleeps == [10.0, 10.0, 10.0]


def test_default_uses_the_longrunning_wait_where_the_api_has_one() -> None:
    svc, clock = Discovery(done_after=1), FakeClock()
    Waiter(Clients(discovery=svc), clock).wait(RUN_OP, deadline=1000)
    assert svc.calls == ["projects.locations.operations.wait"]


@pytest.mark.parametrize("bad", ["", "fixed", "fixed:", "fixed:0", "fixed:-1", "every:10", "x"])
def test_a_poll_setting_other_than_wait_or_fixed_seconds_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="fixed:SECONDS"):
        fixed_interval(bad)


def test_a_deployment_polled_at_a_fixed_interval_never_calls_wait(emulator, deploy) -> None:
    result = deploy(BASICS, poll="fixed:10").apply()
    assert result.ok, result.failures
    methods = [r["method"] for r in emulator.requests()]
    assert not [m for m in methods if m.endswith(".wait")]
    assert methods.count("compute.globalOperations.get") >= 2  # network, firewall
    assert methods.count("compute.regionOperations.get") >= 1  # subnetwork
