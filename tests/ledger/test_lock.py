"""The lock, across real processes: refused while held, taken over once its holder is killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ledger import LedgerError, LocalStore, LockHeld, LockInfo

HOLDER = Path(__file__).with_name("lock_holder.py")
REPO = Path(__file__).resolve().parents[2]


def run_holder(mode: str, ledger: Path, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HOLDER), mode, str(ledger)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.fixture
def holder(store: LocalStore) -> Iterator[tuple[subprocess.Popen[str], LockInfo]]:
    """Another process holding the lock; its record, read from its pipe once it holds it."""
    process = run_holder("hold", store.path, stdin=subprocess.PIPE)
    assert process.stdout is not None
    info = LockInfo.from_dict(json.loads(process.stdout.readline()))
    yield process, info
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_second_process_is_refused_with_the_holder(store: LocalStore, holder) -> None:
    process, info = holder
    attempt = run_holder("try", store.path)
    out, _ = attempt.communicate()
    result = json.loads(out)
    assert result["refused"] == info.to_dict()
    assert info.pid == process.pid and info.host == socket.gethostname()
    for part in (str(info.pid), info.host, info.started, info.id, info.user, "`apply`"):
        assert part in result["message"]


def test_this_process_is_refused_too(store: LocalStore, holder) -> None:
    _, info = holder
    with pytest.raises(LockHeld) as caught, store.lock(command="apply"):
        pass
    assert caught.value.holder == info
    assert "Wait for that run to finish" in str(caught.value)


def test_a_second_store_in_one_process_is_refused(store: LocalStore) -> None:
    with store.lock(command="apply") as lock:
        with pytest.raises(LockHeld) as caught, LocalStore(store.path).lock(command="plan"):
            pass
        assert caught.value.holder == lock.info
        assert caught.value.holder.pid == os.getpid()


def test_a_killed_holder_leaves_no_stuck_lock(store: LocalStore, holder) -> None:
    process, info = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    with store.lock(command="apply") as lock:
        assert lock.stale_previous == info
        assert lock.id != info.id and lock.info.pid == os.getpid()
        # The killed run's work is there to resume.
        assert store.load().serial == 1


def test_a_released_lock_is_not_reported_as_stale(store: LocalStore, holder) -> None:
    process, _ = holder
    process.communicate("")
    assert process.returncode == 0
    with store.lock(command="apply") as lock:
        assert lock.stale_previous is None
    assert store.lock_path.read_bytes() == b""


def test_force_unlock_refuses_a_live_holder(store: LocalStore, holder) -> None:
    _, info = holder
    with pytest.raises(LedgerError, match="held by a running process"):
        store.force_unlock(info.id)
    with pytest.raises(LedgerError, match="is not the lock of ledger"):
        store.force_unlock("0000")


def test_force_unlock_clears_a_dead_holder(store: LocalStore, holder) -> None:
    process, info = holder
    process.kill()
    process.wait()
    assert store.force_unlock(info.id) == info
    with store.lock(command="apply") as lock:
        assert lock.stale_previous is None


def test_force_unlock_when_not_locked(store: LocalStore) -> None:
    with pytest.raises(LedgerError, match="is not locked"):
        store.force_unlock("abc")
    with store.lock(command="apply"):
        pass
    with pytest.raises(LedgerError, match="is not locked"):
        store.force_unlock("abc")


def test_a_record_from_another_host_is_not_taken_over(store: LocalStore) -> None:
    # A ledger on a shared file system, whose holder on another host may still be running.
    foreign = LockInfo("f00d", 4242, "elsewhere", "alice", "apply", "2024-05-01T10:00:00.000Z")
    store.lock_path.write_text(json.dumps(foreign.to_dict()))
    with pytest.raises(LockHeld) as caught, store.lock(command="apply"):
        pass
    assert caught.value.holder == foreign and caught.value.foreign
    assert "provision unlock f00d" in str(caught.value)
    assert store.force_unlock("f00d") == foreign
    with store.lock(command="apply") as lock:
        assert lock.stale_previous is None


def test_an_unreadable_record_of_a_dead_holder_is_taken_over(store: LocalStore) -> None:
    store.lock_path.write_bytes(b'{"id": "tru')
    with store.lock(command="apply") as lock:
        assert lock.stale_previous is None
        assert json.loads(store.lock_path.read_text())["id"] == lock.id
