"""What the machine refuses (a full disk, a read-only directory, a port in use, an address
nobody answers at) is one line naming the path or host and what to do, exit 2: never a
traceback, never "this is a bug"."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.ledger import files
from provision_emulator import Emulator

from ..engine.conftest import BASICS

runner = CliRunner()


def _refusing(monkeypatch: pytest.MonkeyPatch, code: int, why: str) -> None:
    """Every write of a ledger file fails as the file system would fail it."""

    def refuse(path: Path, *_: object) -> None:
        raise OSError(code, why, str(path))

    def refuse_append(fd: int, data: bytes) -> None:
        raise OSError(code, why)

    monkeypatch.setattr(files, "write_private", refuse)
    monkeypatch.setattr(files, "append", refuse_append)


@pytest.mark.parametrize(("code", "why", "advice"), [
    (errno.ENOSPC, "No space left on device", "free some space"),
    (errno.EROFS, "Read-only file system", "writable file system"),
    (errno.EACCES, "Permission denied", "make it writable"),
])
def test_a_ledger_that_cannot_be_written_is_one_line_and_exit_2(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    code: int, why: str, advice: str,
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    monkeypatch.chdir(tmp_path)
    _refusing(monkeypatch, code, why)
    result = runner.invoke(app, ["apply", str(plan), f"--emulator={emulator.url}", "--yes"])
    assert result.exit_code == 2, result.output
    assert why in result.output and advice in result.output
    assert ".provision" in result.output  # the path
    assert "bug" not in result.output and "Traceback" not in result.output


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = subprocess.run(
            [sys.executable, "-m", "orchestrator", "emulator", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert served.returncode == 2, served.stderr
    assert served.stderr.strip().count("\n") == 0 and "Traceback" not in served.stderr
    assert f"127.0.0.1:{port}" in served.stderr and "--port" in served.stderr


def test_an_address_nobody_answers_at_is_one_line_and_exit_2(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again: nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "apply", str(plan),
         f"--emulator=http://127.0.0.1:{port}", "--yes"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
