"""Crash harness: `provision apply plans/psc-cloud-run.yaml` killed with SIGKILL at 26 moments,
resumed by the next `provision apply`, then destroyed.

The moments come from a reference run's request log: the n-th arrival of a given method,
20 spread over the mutating calls and 6 over operation polls. The kill happens inside the
emulator as that request arrives, before it is answered: Google has the call, the client
never hears back, which is the worst moment for a tool's bookkeeping. After each resume the
cloud must hold exactly what a clean apply makes (no duplicate, nothing missing) and the
plan must show no change; after destroy nothing the plan made may remain.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import orchestrator
from provision_emulator import Emulator

from .crashkit import DURATIONS, Killer, Point, cli, duplicate_members, inventory

pytestmark = pytest.mark.slow

PLAN = Path(__file__).parents[2] / "plans" / "psc-cloud-run.yaml"
PROJECTS = ("apigee-demo-project", "backend-demo-project")
MUTATING_POINTS = 20
POLL_POINTS = 6


def _kill_points(log: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(method, n): kill at the n-th arrival of that method."""
    seen: Counter[str] = Counter()
    mutating, polls = [], []
    for entry in log:
        seen[entry["method"]] += 1
        point = (entry["method"], seen[entry["method"]])
        if entry["mutating"]:
            mutating.append(point)
        elif entry["method"].endswith(("operations.get", "Operations.wait", "operations.wait")):
            polls.append(point)

    def spread(points: list[tuple[str, int]], k: int) -> list[tuple[str, int]]:
        return [points[round(i * (len(points) - 1) / (k - 1))] for i in range(k)]

    # How often an operation is polled depends on timing; its first half always happens.
    polls = [(m, n) for m, n in polls if n <= (seen[m] + 1) // 2]
    return spread(mutating, MUTATING_POINTS) + spread(polls, POLL_POINTS)


def test_killed_applies_resume_without_duplicates_or_orphans(tmp_path: Path) -> None:
    stats = Counter()
    with Emulator(durations=DURATIONS) as emu:
        (tmp_path / "reference").mkdir()
        reference = cli(emu, tmp_path / "reference", "apply", str(PLAN), "--json")
        _, err = reference.communicate(timeout=300)
        assert reference.returncode == 0, err
        expected = inventory(emu, PROJECTS)
        points = _kill_points(emu.requests())
        if os.environ.get("CRASH_POINTS"):  # to replay chosen points: "3,17"
            points = [points[int(i)] for i in os.environ["CRASH_POINTS"].split(",")]
        assert len(points) >= 25 or os.environ.get("CRASH_POINTS")

        for i, (method, nth) in enumerate(points):
            print(f"kill point {i}: {method} #{nth}", flush=True)
            emu.reset()
            work = tmp_path / f"kill-{i}"
            work.mkdir()
            killer = Killer(Point(method, nth, "arrived"))
            emu.add_request_listener(killer)
            try:
                proc = cli(emu, work, "apply", str(PLAN), "--json")
                killer.pid = proc.pid
                proc.communicate(timeout=300)
            finally:
                emu.remove_request_listener(killer)
            assert killer.fired, f"{method} #{nth} never arrived"
            assert proc.returncode == -signal.SIGKILL
            stats["kill points"] += 1

            resumed = cli(emu, work, "apply", str(PLAN), "--yes")
            out, err = resumed.communicate(timeout=300)
            assert resumed.returncode == 0, f"resume after {method} #{nth}:\n{out}\n{err}"
            found = inventory(emu, PROJECTS)
            extra, missing = found - expected, expected - found
            stats["duplicates"] += sum(extra.values()) + len(duplicate_members(emu))
            stats["missing"] += sum(missing.values())
            assert not extra and not missing, (method, nth, extra, missing)

            with orchestrator.load(PLAN, emulator=emu,
                                   state_dir=work / ".provision") as dep:
                pending = [(c.step, c.action, c.reason, [f.field for f in c.changes])
                           for c in dep.plan_changes().steps if c.action != "noop"]
                assert pending == [], (method, nth)
                ledger = dep.ledger()
                unsettled = {sid: (r.status, r.operation) for sid, r in ledger.resources.items()
                             if r.status != "present"}
                assert unsettled == {}, (method, nth)
                assert len(ledger.resources) == len(dep.plan.steps)
                stats["resumes converged"] += 1
                destroyed = dep.destroy()
                assert destroyed.ok, (method, nth, destroyed.failures)
            orphans = inventory(emu, PROJECTS)
            stats["orphans"] += sum(orphans.values())
            assert not orphans, (method, nth, orphans)

    print(f"\ncrash harness: {dict(stats)}")
    assert stats["kill points"] == len(points)
