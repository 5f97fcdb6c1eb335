"""What every ledger store offers, so callers never know where the ledger lives.

Two stores keep the contract: a local file (local.py) and a Cloud Storage object (gcs.py), chosen
by `open_store`. `save` refuses to overwrite a ledger other than the one `load` returned (locally
by serial, on Cloud Storage by object generation), the lock is exclusive and names its holder, and
a lock id is an opaque string (the lock object's generation there, a random id here).
"""

from __future__ import annotations

import getpass
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from orchestrator.ledger.commit import Staged
from orchestrator.ledger.model import Ledger, now

# Shown a ledger `restore_backup` would put back and where it comes from; says yes or no.
Confirm = Callable[[Ledger, str], bool]


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or held) a ledger's lock."""

    id: str
    pid: int
    host: str
    user: str
    command: str
    started: str

    @classmethod
    def mine(cls, lock_id: str, command: str) -> LockInfo:
        return cls(lock_id, os.getpid(), socket.gethostname(), _user(), command, now())

    def describe(self) -> str:
        return (
            f"`{self.command}` (lock {self.id}): pid {self.pid} on host {self.host}, "
            f"user {self.user}, since {self.started}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> LockInfo:
        if not isinstance(data, dict):
            raise ValueError("a lock record is a JSON object")
        fields = {"id": str, "pid": int, "host": str, "user": str, "command": str, "started": str}
        for name, kind in fields.items():
            if not isinstance(data.get(name), kind):
                raise ValueError(f"lock record field {name!r} is missing or not a {kind.__name__}")
        return cls(**{name: data[name] for name in fields})


@dataclass(frozen=True)
class Lock:
    """A held lock. stale_previous: the record of a holder that died without releasing it, which
    this lock took over (the CLI says so)."""

    info: LockInfo
    stale_previous: LockInfo | None = None

    @property
    def id(self) -> str:
        return self.info.id


class SavesByStaging(ABC):
    """`save` as `stage` then `wait`, for the stores (local, Cloud Storage) that stage."""

    @abstractmethod
    def stage(self, ledger: Ledger, changed: Collection[str] | None = None) -> Staged: ...

    @abstractmethod
    def _forget_staged(self) -> None:
        """Drop what the store assumed of a staged write that did not happen."""

    def save(self, ledger: Ledger) -> None:
        serial = ledger.serial
        try:
            self.stage(ledger).wait()
        except BaseException:
            if ledger.serial != serial:
                # Staged but not written: back to where the save found the ledger and store.
                ledger.serial = serial
                self._forget_staged()
            raise


class Store(Protocol):
    location: str
    lock_timeout: float  # seconds `lock` waits for another holder; 0 refuses at once

    def load(self) -> Ledger:
        """The stored ledger, or a new one (serial 0, plan "") when there is none yet."""
        ...

    def exists(self) -> bool:
        """Whether a ledger is stored there (a command that only reads or removes what a ledger
        records refuses one that is not, rather than make it)."""
        ...

    def save(self, ledger: Ledger) -> None:
        """Writes `ledger` with serial + 1 (updating `ledger.serial`). Needs the lock; refuses
        with LedgerConflict when the stored ledger is not the one `ledger` was loaded from."""
        ...

    def stage(self, ledger: Ledger, changed: Collection[str] | None = None) -> Staged:
        """`save` in two halves, so that saves made meanwhile by other threads share a write:
        this one takes what must be written (call it while nothing changes `ledger`) and
        returns at once; `wait()` on what it returns (without holding up the others) returns
        once that is durable, and raises what `save` would. `changed`: the steps whose records
        changed (and the last run, always), when that is all that changed since the last
        save; None for anything else."""
        ...

    def lock(self, command: str) -> AbstractContextManager[Lock]:
        """Holds the exclusive lock for the block; raises LockHeld if another still has it once
        `lock_timeout` has passed."""
        ...

    def restore_backup(self, force: bool = False, confirm: Confirm | None = None) -> Ledger | None:
        """Puts the last good version back (the valid part of a damaged journal, or else the
        backup: the ledger as the last finished run left it); without force, only when the
        current one is corrupt. `confirm(ledger, source)` is shown what would be put back and
        from where before anything is written; when it says no, None is returned."""
        ...

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Removes the lock record `lock_id` of a holder that is gone; returns what it removed."""
        ...

    def fingerprint_key(self) -> bytes:
        """The ledger's secret-fingerprint key, kept outside the ledger; created on first use."""
        ...

    def stored_fingerprint_key(self) -> bytes | None:
        """The fingerprint key if the ledger has one yet (none is created)."""
        ...

    def put_new(self, ledger: Ledger, key: bytes | None) -> None:
        """Writes `ledger` with its serial as it is, and its key, where there is no ledger yet;
        refuses to replace either. Needs the lock."""
        ...

    def retire(self) -> str:
        """Moves the ledger aside once it has been copied elsewhere (its backup and key go);
        returns where the old copy is kept. Needs the lock."""
        ...


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # No login name in the environment nor a passwd entry, as in some containers.
        return str(os.getuid())
