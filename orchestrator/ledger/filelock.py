"""The local ledger's lock: `flock` on a file beside the ledger, holding who took it.

The kernel releases an flock when its holder dies, however it dies, so on one host a lock can
never be left stuck: a record found in a lock file whose flock is free belongs to a holder that
died, and is taken over. The file is never deleted, only emptied on release: deleting a locked
file lets a waiter lock the deleted inode while a newcomer locks a fresh one, and both would run.
The descriptor is not inherited by programs the engine starts (Python opens files close-on-exec),
so a child process cannot keep a dead run's lock alive.

A record naming another host (a ledger on a shared file system) is not taken over: flock may not
reach across hosts there, and a live holder cannot be told from a dead one. It is refused with
LockHeld, and `force_unlock` with its id clears it.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
from pathlib import Path

from orchestrator.ledger.errors import LedgerError, LockHeld
from orchestrator.ledger.files import PRIVATE
from orchestrator.ledger.store import Lock, LockInfo

_RECORD_MAX = 64 * 1024


class HeldLock:
    """An acquired lock file; `release` ends it."""

    def __init__(self, fd: int, lock: Lock) -> None:
        self._fd = fd
        self.lock = lock

    def release(self) -> None:
        # Emptied before the flock goes, so nobody ever reads a released holder as stale.
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)


def acquire(path: Path, location: str, command: str) -> HeldLock:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        if not _try_flock(fd):
            raise LockHeld(location, _read(fd))
        previous = _read(fd)
        if previous is not None and previous.host != socket.gethostname():
            raise LockHeld(location, previous, foreign=True)
        info = LockInfo.mine(secrets.token_hex(6), command)
        data = json.dumps(info.to_dict()).encode()
        # Written over the old record, then cut to length: a reader parses the leading object.
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except BaseException:
        os.close(fd)
        raise
    return HeldLock(fd, Lock(info, stale_previous=previous))


def force_unlock(path: Path, location: str, lock_id: str) -> LockInfo:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        raise LedgerError(f"ledger {location} is not locked") from None
    try:
        free = _try_flock(fd)
        record = _read(fd)
        if record is None:
            raise LedgerError(f"ledger {location} is not locked")
        if record.id != lock_id:
            raise LedgerError(
                f"lock {lock_id} is not the lock of ledger {location}; that is held by "
                f"{record.describe()}"
            )
        if not free:
            raise LedgerError(
                f"lock {lock_id} of ledger {location} is held by a running process: "
                f"{record.describe()}. Stop that run instead of unlocking it"
            )
        os.ftruncate(fd, 0)
        return record
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read(fd: int) -> LockInfo | None:
    """The record in the lock file; None when there is none or it cannot be read (a holder
    between taking the flock and writing, or one that died while writing)."""
    text = os.pread(fd, _RECORD_MAX, 0).decode(errors="replace")
    if not text.strip():
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(text)
        return LockInfo.from_dict(data)
    except ValueError:
        return None
