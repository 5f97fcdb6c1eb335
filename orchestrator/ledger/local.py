"""The ledger as a local JSON file.

Beside `NAME` live `NAME.bak` (the version before the last write), `NAME.lock` (the lock, see
filelock) and `NAME.key` (the secret-fingerprint key, see fingerprint), all mode 0600; and, once
the ledger has been migrated elsewhere, `NAME.migrated` (what it was then).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.ledger import filelock, files, waiting
from orchestrator.ledger.codec import decode, encode
from orchestrator.ledger.errors import LedgerConflict, LedgerCorrupt, LedgerError
from orchestrator.ledger.fingerprint import new_key, parse_key
from orchestrator.ledger.model import Ledger, now
from orchestrator.ledger.store import Lock, LockInfo


class LocalStore:
    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 0.0) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.lock_timeout = lock_timeout
        self.backup_path = self._beside("bak")
        self.lock_path = self._beside("lock")
        self.key_path = self._beside("key")
        self._held: filelock.HeldLock | None = None
        # (lineage, serial) of the file as this store last read or wrote it while holding the
        # lock; None when unknown. Spares `save` a read of the file before every write.
        self._known: tuple[str | None, int] | None = None
        self._saving = threading.Lock()

    def load(self) -> Ledger:
        ledger = self._read()
        if ledger is None:
            return Ledger.new("")
        if self._held is not None:
            self._known = (ledger.lineage, ledger.serial)
        return ledger

    def save(self, ledger: Ledger) -> None:
        with self._saving:
            self._require_lock()
            self._check_unchanged(ledger)
            serial = ledger.serial + 1
            files.replace(self.path, encode(ledger, serial), keep_old_as=self.backup_path)
            ledger.serial = serial
            self._known = (ledger.lineage, serial)

    @contextmanager
    def lock(self, command: str) -> Iterator[Lock]:
        held = waiting.within(
            self.lock_timeout,
            lambda: filelock.acquire(self.lock_path, self.location, command),
        )
        # Whatever was known of the file before the lock may have been changed by another run.
        self._known = None
        self._held = held
        try:
            yield held.lock
        finally:
            self._held = None
            self._known = None
            held.release()

    def restore_backup(self, force: bool = False) -> Ledger:
        if self._held is not None:
            return self._restore(force)
        with self.lock("ledger restore"):
            return self._restore(force)

    def force_unlock(self, lock_id: str) -> LockInfo:
        return filelock.force_unlock(self.lock_path, self.location, lock_id)

    def fingerprint_key(self) -> bytes:
        key = self.stored_fingerprint_key()
        if key is None:
            self._create_key(new_key())
            key = self.stored_fingerprint_key()
        if key is None:
            raise LedgerError(f"fingerprint key {self.key_path} vanished as it was made")
        return key

    def stored_fingerprint_key(self) -> bytes | None:
        """The ledger's fingerprint key if it has one yet."""
        try:
            text = self.key_path.read_text(errors="replace").strip()
        except FileNotFoundError:
            return None
        return parse_key(text, str(self.key_path))

    def put_new(self, ledger: Ledger, key: bytes | None) -> None:
        """Writes `ledger` as it is (its serial kept) where there is no ledger yet, with its
        fingerprint key; refuses to replace either. Needs the lock."""
        self._require_lock()
        if key is not None:
            self._create_key(key)
            if self.stored_fingerprint_key() != key:
                raise LedgerError(
                    f"fingerprint key {self.key_path} exists and is another key; refusing to "
                    "replace it"
                )
        if self.path.exists() or self.backup_path.exists():
            raise LedgerError(f"ledger {self.location} exists; refusing to overwrite it")
        files.replace(self.path, encode(ledger, ledger.serial))
        self._known = None

    def retire(self) -> str:
        """Moves the ledger aside (`NAME.migrated`), and removes its backup and key, once it has
        been copied elsewhere; returns where it is kept. Needs the lock."""
        self._require_lock()
        aside = self._beside("migrated")
        os.replace(self.path, aside)
        self.backup_path.unlink(missing_ok=True)
        self.key_path.unlink(missing_ok=True)
        files.fsync_dir(self.path.parent)
        self._known = None
        return str(aside)

    def _create_key(self, key: bytes) -> None:
        if self.key_path.exists():
            return
        staged = files.write_private(self.key_path, key.hex().encode() + b"\n")
        try:
            # link() fails if another process created the key meanwhile; theirs is kept, so
            # every fingerprint of this ledger is made with one key.
            os.link(staged, self.key_path)
            files.fsync_dir(self.key_path.parent)
        except FileExistsError:
            pass
        finally:
            staged.unlink()

    def _require_lock(self) -> None:
        if self._held is None:
            raise LedgerError(
                f"ledger {self.location} is written only by the run that holds its lock "
                "(store.lock())"
            )

    def _restore(self, force: bool) -> Ledger:
        try:
            data = self.backup_path.read_bytes()
        except FileNotFoundError:
            raise LedgerError(f"ledger {self.location} has no backup to restore") from None
        restored = decode(data, str(self.backup_path))
        try:
            current = self._read()
        except LedgerCorrupt:
            current = None
        if current is not None and not force:
            raise LedgerError(
                f"ledger {self.location} is intact (serial {current.serial}); restoring its "
                f"backup (serial {restored.serial}) would discard its last write. Force it if "
                "that is what you want"
            )
        serial = max(restored.serial, current.serial if current else 0) + 1
        # The replaced file is kept for inspection; the backup stays as it is, a good copy.
        aside = self._beside(f"replaced-{now().replace(':', '')}")
        files.replace(self.path, encode(restored, serial), keep_old_as=aside)
        restored.serial = serial
        self._known = (restored.lineage, serial)
        return restored

    def _check_unchanged(self, ledger: Ledger) -> None:
        """Refuses to write over a file that is not the version `ledger` was loaded from: a stale
        copy saved late would silently undo later writes."""
        if self._known is None:
            on_disk = self._read()
            self._known = (on_disk.lineage, on_disk.serial) if on_disk else (None, 0)
        lineage, serial = self._known
        if lineage is not None and lineage != ledger.lineage:
            raise LedgerConflict(
                f"ledger {self.location} belongs to another plan instance (lineage {lineage}) "
                f"than the ledger being saved (lineage {ledger.lineage})"
            )
        if serial != ledger.serial:
            raise LedgerConflict(
                f"ledger {self.location} is at serial {serial}, but the ledger being saved was "
                f"loaded at serial {ledger.serial}: it changed since; load it again"
            )

    def _read(self) -> Ledger | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            if self.backup_path.exists():
                # Starting afresh here would forget every resource the backup knows of.
                raise LedgerCorrupt(
                    self.location,
                    "the file is missing but its backup exists",
                    str(self.backup_path),
                ) from None
            return None
        backup = str(self.backup_path) if self.backup_path.exists() else None
        return decode(data, self.location, backup)

    def _beside(self, suffix: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{suffix}")
