"""Commands that read or undo what a ledger records, given one that is not there (#15, item 6):
exit 2, one line naming the path, nothing created. And no credentials: exit 2, what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..engine.conftest import BASICS
from .test_cli import _provision

COMMANDS = {
    "destroy": ["destroy", "--ledger", "typo.json", "--emulator", "--yes"],
    "rollback": ["rollback", "--ledger", "typo.json", "--emulator", "--yes"],
    "show": ["show", "--ledger", "typo.json"],
    "outputs": ["outputs", "--ledger", "typo.json"],
    "ledger rm": ["ledger", "rm", "fw", "--ledger", "typo.json", "--emulator"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_ledger_is_refused_and_nothing_is_created(command: str, tmp_path: Path) -> None:
    done = _provision(COMMANDS[command], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no ledger at typo.json" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_directory_as_ledger_is_refused(tmp_path: Path) -> None:
    done = _provision(["show", "--ledger", str(tmp_path)], tmp_path)
    assert done.returncode == 2 and "is a directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_credentials_says_what_to_do(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
    done = _provision(["plan", str(plan)], tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert "no Google credentials found" in done.stderr and "--emulator" in done.stderr
