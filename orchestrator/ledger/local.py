"""The ledger as a local JSON file, and a journal of the saves made since it was written.

A save of the whole ledger rewrites `NAME` (temp file, fsync, rename). A save of a few records
(`stage` with `changed`, as the engine makes around every call) appends them instead as one line
to `NAME.journal`, so that it costs what changed rather than the whole ledger: rewriting a ledger
of a thousand resources three times per step made runs quadratic. Loading reads `NAME` and
replays the journal's lines that follow it. The journal is folded into `NAME` once it outgrows
it, and by every save of the whole ledger (an engine's run makes one as it starts and as it
ends), so between runs `NAME` alone is the ledger. Saves staged while a write is on disk go out
together in the next one (group commit).

Beside `NAME` live `NAME.journal`, `NAME.bak` (the ledger as the last finished run left it: what
`ledger restore` puts back should `NAME` be damaged, never older than that run), `NAME.lock`
(the lock, see filelock) and `NAME.key` (the secret-fingerprint key, see fingerprint), all mode
0600; and, once the ledger has been migrated elsewhere, `NAME.migrated` (what it was then).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.gcp.clock import WallClock
from orchestrator.ledger import filelock, files, waiting
from orchestrator.ledger.codec import decode, encode, encode_entry, replay, replay_prefix
from orchestrator.ledger.commit import GroupCommit, Staged
from orchestrator.ledger.errors import LedgerConflict, LedgerCorrupt, LedgerError
from orchestrator.ledger.fingerprint import new_key, parse_key
from orchestrator.ledger.model import Ledger, finished, now
from orchestrator.ledger.store import Confirm, Lock, LockInfo, SavesByStaging

# The journal is folded into the ledger file once it is larger than the file, and than this: so
# the journal's lines are written about twice in all, and a small ledger is rewritten seldom.
JOURNAL_MIN_BYTES = 1 << 20


@dataclass(frozen=True)
class _Write:
    data: bytes
    whole: bool  # the whole ledger, for NAME; otherwise a journal line
    finished: bool = False  # the whole ledger as a run ended it: the backup too


class LocalStore(SavesByStaging):
    def __init__(
        self, path: str | os.PathLike[str], *, lock_timeout: float = 0.0, clock: Any = None
    ) -> None:
        # A symlinked ledger is its target's: written there (not replaced by a file where the
        # link was), and locked there, so two links to one ledger exclude each other.
        self.path = Path(os.path.realpath(path))
        if self.path.is_dir():
            raise LedgerError(
                f"ledger {self.path}: is a directory; a ledger is a file, such as "
                f"{self.path / 'NAME.ledger.json'}"
            )
        self.clock = clock or WallClock()
        self.location = str(Path(path))
        self.lock_timeout = lock_timeout
        self.backup_path = self._beside("bak")
        self.lock_path = self._beside("lock")
        self.key_path = self._beside("key")
        self.journal_path = self._beside("journal")
        self._held: filelock.HeldLock | None = None
        # (lineage, serial) of the ledger as this store last read or staged it while holding
        # the lock; None when unknown. Spares a save a read of the file before every write.
        self._known: tuple[str | None, int] | None = None
        self._saving = threading.Lock()
        self._commits: GroupCommit[_Write] = GroupCommit(self._write)
        # Staging side: whether the next save must be of the whole ledger (at the start of each
        # lock, so that the journal appended to is always one this holder began, and after a
        # failed write); the bytes staged for NAME and for the journal since; and (run id,
        # actions, events) of the ledger's last run as staged, so that a line carries only
        # the run's newer actions and events.
        self._whole_next = True
        self._file_bytes = 0
        self._journal_bytes = 0
        self._run_saved: tuple[int, int, int] | None = None
        # Writing side: the journal's descriptor, and whether a write failed since NAME was
        # last written (lines staged after it must not follow a gap).
        self._journal_fd: int | None = None
        self._write_failed = False

    def exists(self) -> bool:
        return self.path.exists() or self.journal_path.exists()

    def load(self) -> Ledger:
        if self._held is not None:
            # What this holder staged is read back, not the file as it was before.
            self._commits.flush()
        ledger = self._read()
        if ledger is None:
            return Ledger.new("")
        if self._held is not None:
            self._known = (ledger.lineage, ledger.serial)
        return ledger

    def _forget_staged(self) -> None:
        self._known = None

    def stage(self, ledger: Ledger, changed: Collection[str] | None = None) -> Staged:
        with self._saving:
            self._require_lock()
            self._check_unchanged(ledger)
            serial = ledger.serial + 1
            run = ledger.runs[-1] if ledger.runs else None
            saved = self._run_saved
            if (
                changed is not None
                and run is not None
                and saved is not None
                and saved[0] == run.id
                and not self._whole_next
                and self._journal_bytes < max(JOURNAL_MIN_BYTES, self._file_bytes)
            ):
                write = _Write(encode_entry(ledger, serial, changed, saved[1:]), False)
                self._journal_bytes += len(write.data)
            else:
                write = _Write(encode(ledger, serial), True, finished(ledger))
                self._file_bytes, self._journal_bytes = len(write.data), 0
                self._whole_next = False
            self._run_saved = (
                (run.id, len(run.actions), len(run.events)) if run is not None else None
            )
            ledger.serial = serial
            self._known = (ledger.lineage, serial)
            return self._commits.stage(write)

    def _write(self, writes: list[_Write]) -> None:
        """Writes a batch of staged saves: the last whole ledger among them (which holds every
        save staged before it), then the journal lines staged after it."""
        try:
            wholes = [i for i, w in enumerate(writes) if w.whole]
            if wholes:
                self._replace_file(writes[wholes[-1]])
                writes = writes[wholes[-1] + 1 :]
            elif self._write_failed:
                raise LedgerError(
                    f"ledger {self.location}: an earlier write failed, so this save is not "
                    "written either (it would follow a gap); the next save writes the whole "
                    "ledger"
                )
            if writes:
                if self._journal_fd is None:
                    self._journal_fd = files.open_append(self.journal_path)
                files.append(self._journal_fd, b"".join(w.data for w in writes))
        except BaseException:
            self._write_failed = self._whole_next = True
            raise

    def _replace_file(self, write: _Write) -> None:
        files.replace(self.path, write.data)
        if write.finished:
            files.replace(self.backup_path, write.data)
        self._write_failed = False
        # NAME now holds every journal line; those left behind (a crash before this unlink)
        # are older than NAME, and replay skips them.
        self._close_journal()
        self.journal_path.unlink(missing_ok=True)

    def _close_journal(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    @contextmanager
    def lock(self, command: str) -> Iterator[Lock]:
        held = waiting.within(
            self.lock_timeout,
            lambda: filelock.acquire(self.lock_path, self.location, command),
            self.clock,
        )
        # Whatever was known of the file before the lock may have been changed by another run.
        self._known = None
        self._whole_next = True
        self._held = held
        try:
            yield held.lock
            self._commits.flush()
        finally:
            self._held = None
            self._known = None
            self._close_journal()
            held.release()

    def restore_backup(self, force: bool = False, confirm: Confirm | None = None) -> Ledger | None:
        if self._held is not None:
            return self._restore(force, confirm)
        with self.lock("ledger restore"):
            return self._restore(force, confirm)

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
        if any(p.exists() for p in (self.path, self.backup_path, self.journal_path)):
            raise LedgerError(f"ledger {self.location} exists; refusing to overwrite it")
        files.replace(self.path, encode(ledger, ledger.serial))
        self._known = None

    def retire(self) -> str:
        """Moves the ledger aside (`NAME.migrated`), and removes its backup and key, once it has
        been copied elsewhere; returns where it is kept. Needs the lock."""
        self._require_lock()
        if self.journal_path.exists():
            # Folded in first, so that the copy kept aside is the whole ledger.
            self.save(self.load())
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

    def _restore(self, force: bool, confirm: Confirm | None) -> Ledger | None:
        self._commits.flush()
        # The journal goes aside below: what this holder saves next starts afresh.
        self._close_journal()
        self._whole_next = True
        stamp = now().replace(":", "")
        journal = self._read_journal()
        try:
            current = self._read_file()
        except LedgerCorrupt:
            current = None
        if current is not None:
            damage = replay_prefix(
                current, journal, self.location, str(self.journal_path), self.location)
            if damage is not None:
                # Only the journal is damaged: the file and the lines before the damage are the
                # last good version.
                source = f"{self.location} and its journal up to the damage ({damage.reason})"
                if confirm is not None and not confirm(current, source):
                    return None
                # The file first: should the journal still be there after a crash, its lines
                # are older than the file and skipped, up to the damage, which is reported again.
                current.serial += 1
                files.replace(self.path, encode(current, current.serial))
                os.replace(self.journal_path, self._beside(f"journal.replaced-{stamp}"))
                self._known = (current.lineage, current.serial)
                return current
        try:
            data = self.backup_path.read_bytes()
        except FileNotFoundError:
            raise LedgerError(f"ledger {self.location} has no backup to restore") from None
        restored = decode(data, str(self.backup_path))
        if current is not None and not force:
            raise LedgerError(
                f"ledger {self.location} is intact (serial {current.serial}); restoring its "
                f"backup (serial {restored.serial}) would discard its last write. Run provision "
                "ledger restore --force if that is what you want"
            )
        if confirm is not None and not confirm(restored, str(self.backup_path)):
            return None
        serial = max(restored.serial, current.serial if current else 0) + 1
        # What is replaced is kept for inspection (the journal too: it follows the replaced
        # file, not the backup); the backup stays as it is, a good copy.
        if self.journal_path.exists():
            os.replace(self.journal_path, self._beside(f"journal.replaced-{stamp}"))
        aside = self._beside(f"replaced-{stamp}")
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
        # The journal first: should a save fold it into the file between the two reads, its
        # lines are in the file read next, and replay skips them as older.
        journal = self._read_journal()
        ledger = self._read_file()
        if ledger is None:
            if journal:
                raise LedgerCorrupt(
                    self.location, f"the file is missing but its journal {self.journal_path} "
                    "exists", str(self.backup_path) if self.backup_path.exists() else None,
                )
            return None
        replay(ledger, journal, self.location, str(self.journal_path), self.location)
        return ledger

    def _read_file(self) -> Ledger | None:
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

    def _read_journal(self) -> bytes:
        try:
            return self.journal_path.read_bytes()
        except FileNotFoundError:
            return b""

    def _beside(self, suffix: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{suffix}")
