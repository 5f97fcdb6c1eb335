"""Ctrl-C and kills of the CLI with the embedded emulator: the run stops with the resume hint
on a terminal as in a pipe, the next run resumes it, and the emulator's saved cloud is never
behind the ledger."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from .terminal import HANG, on_a_terminal

PLAN = Path(__file__).parents[2] / "plans" / "psc-cloud-run.yaml"


def _on_a_terminal(cwd: Path, *args: str, interrupts: int) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal and press Ctrl-C `interrupts` times once the live
    display shows a finished step; its exit status and what the terminal showed."""
    sent: list[int] = []

    def press(shown: bytes, proc: subprocess.Popen[bytes]) -> None:
        if not sent and shown.count(b"finished") >= 3:
            for _ in range(interrupts):
                proc.send_signal(signal.SIGINT)
            sent.append(interrupts)
        return None

    return on_a_terminal(cwd, list(args), press)


def _provision(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=HANG)


def test_ctrl_c_on_a_terminal_lets_the_steps_under_way_finish_and_says_how_to_resume(
    tmp_path: Path,
) -> None:
    status, shown = _on_a_terminal(tmp_path, "apply", str(PLAN), "--emulator", "--yes",
                                   interrupts=1)
    assert status == 130, shown[-2000:]
    assert "finishes and is recorded" in shown
    assert "run the same command again to resume" in shown
    resumed = _provision(tmp_path, "apply", str(PLAN), "--emulator", "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "apply complete" in resumed.stdout
    planned = _provision(tmp_path, "plan", str(PLAN), "--emulator", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout


def test_a_second_ctrl_c_stops_at_once_and_the_next_run_resumes(tmp_path: Path) -> None:
    status, shown = _on_a_terminal(tmp_path, "apply", str(PLAN), "--emulator", "--yes",
                                   interrupts=2)
    assert status == 130, shown[-2000:]
    assert "run the same command again to resume" in shown
    resumed = _provision(tmp_path, "apply", str(PLAN), "--emulator", "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    planned = _provision(tmp_path, "plan", str(PLAN), "--emulator", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout


def test_the_embedded_emulators_cloud_is_saved_before_the_ledger_records_it(
    tmp_path: Path,
) -> None:
    """Killed the moment apply has printed that it is complete: the cloud saved by the
    embedded emulator holds everything the ledger records."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "apply", str(PLAN), "--emulator", "--yes"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "apply complete" in line:
            proc.kill()
            break
    proc.wait(timeout=HANG)
    planned = _provision(tmp_path, "plan", str(PLAN), "--emulator", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout
    assert "deleted outside provision" not in planned.stdout
