"""On the virtual clock a run is a function of its plan and the emulator's seed: the same requests
in the same order at the same simulated times, one step at a time; the same requests, meeting
the same faults, at any parallelism; and Google's durations to the second, however busy the
machine."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orchestrator
from provision_emulator import Emulator

PLANS = Path(__file__).parents[2] / "plans"
START = 1_800_000_000.0
FAULTS = {"rate_limit": 0.1, "unavailable": 0.1, "consistency_delay": 20.0, "iam_delay": 30.0,
          "latency": 0.05, "latency_jitter": 0.1}
# Faults drawn per request: at any parallelism, each request meets the same ones. (A just-created
# resource reading 404 for a while, or a late IAM binding, is a window in time: how many reads
# fall in it depends on when a dependent step starts, which parallelism changes.)
PER_REQUEST = {k: v for k, v in FAULTS.items() if not k.endswith("_delay")}
OPERATION = re.compile(r"/operations/[^/]+")


def _run(plan: Path, tmp: Path, parallelism: int, faults: dict | None) -> tuple[list, float]:
    with (
        Emulator(seed=7, start=START, faults=faults) as emu,
        orchestrator.load(plan, emulator=emu, parallelism=parallelism,
                          state_dir=tmp / ".provision") as dep,
    ):
        result = dep.apply()
        assert result.ok, [(f.step, f.message) for f in result.failures]
        log = [(r["method"], r["path"], r["status"], r["time"]) for r in emu.requests()]
        return log, result.elapsed


def test_one_step_at_a_time_a_run_repeats_request_for_request(tmp_path: Path) -> None:
    plan = PLANS / "psc-cloud-run.yaml"
    first, elapsed = _run(plan, tmp_path / "a", 1, FAULTS)
    second, again = _run(plan, tmp_path / "b", 1, FAULTS)
    assert {status for _, _, status, _ in first} >= {200, 429, 503}  # the faults happened
    assert first == second and elapsed == again


def test_at_any_parallelism_a_run_makes_the_same_requests(tmp_path: Path) -> None:
    """Every request is made as often at parallelism 8 as one step at a time, meeting the same
    faults (the ids Apigee gives attachments come from the request's draw key, not from its
    place in the log, so their operations' polls draw the same faults)."""
    plan = PLANS / "psc-cloud-run.yaml"

    def requests(log: list) -> Counter:
        # Operation names carry the moment they were made; what is asked of them does not.
        return Counter((method, OPERATION.sub("/operations/*", path)) for method, path, *_ in log)

    serial, serial_elapsed = _run(plan, tmp_path / "serial", 1, PER_REQUEST)
    wide, wide_elapsed = _run(plan, tmp_path / "wide", 8, PER_REQUEST)
    assert {status for _, _, status, _ in serial} >= {200, 429, 503}
    one, eight = requests(serial), requests(wide)
    assert one == eight
    assert wide_elapsed < serial_elapsed


def test_googles_durations_to_the_second(tmp_path: Path) -> None:
    """The network, subnet and firewall of network-basics take 10, 15 and 5 simulated seconds
    (operations.DURATIONS): one step at a time, 30 s, whatever the CPU did meanwhile."""
    _, elapsed = _run(PLANS / "network-basics.yaml", tmp_path, 1, None)
    assert elapsed == 30.0
