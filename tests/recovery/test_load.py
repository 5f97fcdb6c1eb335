"""CPU load cannot fail a run on the embedded emulator: every reference plan applies and destroys
first time, as the quick start runs them, while two processes burn a core each.

On the virtual clock a deadline passes only when simulated time does, and simulated time moves
only when every participant waits: a stalled CPU delays a run, it does not spend its deadlines.
LOAD_RUNS=10 repeats each plan ten times (the default is once, in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PLANS = sorted((Path(__file__).parents[2] / "plans").glob("*.yaml"))
RUNS = int(os.environ.get("LOAD_RUNS", "1"))
BURN = "while True: pass"


@pytest.fixture
def burners() -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _provision(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "--emulator", "--yes"],
        cwd=cwd, capture_output=True, text=True, timeout=600, env=dict(os.environ),
    )


@pytest.mark.parametrize("plan", PLANS, ids=[p.stem for p in PLANS])
def test_reference_plan_applies_and_destroys_first_time_under_load(
    plan: Path, tmp_path: Path, burners: None
) -> None:
    for run in range(RUNS):
        cwd = tmp_path / f"run-{run}"
        cwd.mkdir()
        for command in ("apply", "destroy"):
            done = _provision(cwd, command, str(plan))
            assert done.returncode == 0, f"{command} #{run + 1}:\n{done.stdout}\n{done.stderr}"
        ledger = cwd / ".provision" / f"{plan.stem}.ledger.json"
        assert json.loads(ledger.read_text())["resources"] == {}
