"""The ledger as an object in Cloud Storage: gs://BUCKET/PATH/NAME.json.

Beside `NAME` live `NAME.lock` (the lock and its lease, see gcslock), `NAME.bak` (the ledger as
the last finished run left it) and `NAME.key` (the secret-fingerprint key), as beside a local
ledger. The bytes are a local ledger's (codec: canonical JSON and its checksum), so a ledger
moves between the two unchanged.

Saves staged while a write is under way go out together in the next write (group commit: see
commit.py), as the whole object: Cloud Storage has no append, and a round trip costs more than
the encoding.

Every write of the ledger is conditional on the generation this store last read or wrote
(ifGenerationMatch, 0 for a ledger not yet written), so a write made from a stale copy is refused
with LedgerConflict instead of silently undoing another's. Terraform's GCS backend writes its
state unconditionally and relies on its lock alone.

The backup is an object of its own rather than the bucket's object versioning: it works whatever
the bucket's configuration, `ledger restore` reads it without listing versions (one permission
fewer, and no guessing which version was the ledger's last good one), and it means what it means
beside a local ledger. Object versioning is still worth turning on as a deeper history (README).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from google.api_core.exceptions import Forbidden, NotFound, PreconditionFailed, Unauthorized

from orchestrator.gcp.clock import WallClock
from orchestrator.ledger import gcslock, waiting
from orchestrator.ledger.codec import decode, encode
from orchestrator.ledger.commit import GroupCommit, Staged
from orchestrator.ledger.errors import LedgerConflict, LedgerCorrupt, LedgerError
from orchestrator.ledger.fingerprint import new_key, parse_key
from orchestrator.ledger.model import Ledger, finished, now
from orchestrator.ledger.store import Confirm, Lock, LockInfo, SavesByStaging

SCHEME = "gs://"
JSON = "application/json"


@dataclass(frozen=True)
class _Version:
    """The ledger object as this store last read or wrote it (generation 0: there is none)."""

    lineage: str | None
    serial: int
    generation: int
    data: bytes


def parse_location(location: str) -> tuple[str, str]:
    """(bucket, object name) of gs://BUCKET/PATH/NAME.json."""
    bucket, _, name = location.removeprefix(SCHEME).partition("/")
    if not location.startswith(SCHEME) or not bucket or not name or name.endswith("/"):
        raise LedgerError(f"ledger {location}: expected gs://BUCKET/PATH/NAME.json")
    return bucket, name


class GcsStore(SavesByStaging):
    """client: returns a google-cloud-storage Client for the calling thread."""

    def __init__(
        self,
        location: str,
        client: Callable[[], Any],
        *,
        lock_timeout: float = 0.0,
        lease: float = gcslock.LEASE_SECONDS,
        clock: Any = None,
    ) -> None:
        self.clock = clock or WallClock()
        self.bucket, self.name = parse_location(location)
        self.location = location
        self.backup_location = f"{location}.bak"
        self.lock_timeout = lock_timeout
        self.lease = lease
        self._client = client
        self._held: gcslock.HeldLock | None = None
        # _known: the object as last read or written; _staged: (lineage, serial) of the last
        # save staged, when it is not yet written.
        self._known: _Version | None = None
        self._staged: tuple[str, int] | None = None
        self._saving = threading.Lock()
        self._commits: GroupCommit[tuple[str, int, bytes]] = GroupCommit(self._write_batch)

    def load(self) -> Ledger:
        if self._held is not None:
            # What this holder staged is read back, not the object as it was before.
            self._commits.flush()
        with self._cloud_errors():
            read = self._read()
        if self._held is not None:
            self._known = read[1] if read else _Version(None, 0, 0, b"")
            self._staged = None
        return read[0] if read else Ledger.new("")

    def _forget_staged(self) -> None:
        self._staged = None

    def stage(self, ledger: Ledger, changed: Collection[str] | None = None) -> Staged:
        # `changed` is not needed: every write is of the whole ledger.
        with self._saving, self._cloud_errors():
            self._holding()
            if self._staged is not None:
                lineage, at = self._staged
            else:
                known = self._current()
                lineage, at = known.lineage, known.serial
            if lineage is not None and lineage != ledger.lineage:
                raise LedgerConflict(
                    f"ledger {self.location} belongs to another plan instance (lineage "
                    f"{lineage}) than the ledger being saved (lineage {ledger.lineage})"
                )
            if at != ledger.serial:
                raise LedgerConflict(
                    f"ledger {self.location} is at serial {at}, but the ledger being "
                    f"saved was loaded at serial {ledger.serial}: it changed since; load it again"
                )
            serial = ledger.serial + 1
            data = encode(ledger, serial)
            ledger.serial = serial
            self._staged = (ledger.lineage, serial)
            return self._commits.stage((ledger.lineage, serial, data, finished(ledger)))

    def _write_batch(self, saves: list[tuple[str, int, bytes, bool]]) -> None:
        # The last save staged holds every change of those before it.
        lineage, serial, data, ended = saves[-1]
        with self._cloud_errors():
            self._holding().check()
            known = self._current()
            generation = self._write(data, known)
            self._known = _Version(lineage, serial, generation, data)
            if ended:
                self._blob("bak").upload_from_string(data, content_type=JSON)

    @contextmanager
    def lock(self, command: str) -> Iterator[Lock]:
        with self._cloud_errors():
            held = waiting.within(
                self.lock_timeout,
                lambda: gcslock.acquire(
                    self._lock_blob, self.location, command, self.lease, self.clock
                ),
                self.clock,
            )
        # Whatever was known of the ledger before the lock may have been changed by another run.
        self._known = self._staged = None
        self._held = held
        try:
            yield held.lock
            self._commits.flush()
        finally:
            self._held = None
            self._known = self._staged = None
            with self._cloud_errors():
                held.release()

    def restore_backup(self, force: bool = False, confirm: Confirm | None = None) -> Ledger | None:
        if self._held is not None:
            with self._cloud_errors():
                return self._restore(force, confirm)
        with self.lock("ledger restore"), self._cloud_errors():
            return self._restore(force, confirm)

    def force_unlock(self, lock_id: str) -> LockInfo:
        with self._cloud_errors():
            return gcslock.force_unlock(self._lock_blob, self.location, lock_id)

    def fingerprint_key(self) -> bytes:
        with self._cloud_errors():
            key = self.stored_fingerprint_key()
            if key is None:
                self._create_key(new_key())
                key = self.stored_fingerprint_key()
        if key is None:
            raise LedgerError(f"fingerprint key {self._key_location()} vanished as it was made")
        return key

    def stored_fingerprint_key(self) -> bytes | None:
        """The ledger's fingerprint key if it has one yet."""
        fetched = self._fetch("key")
        if fetched is None:
            return None
        return parse_key(fetched[0].decode(errors="replace"), self._key_location())

    def put_new(self, ledger: Ledger, key: bytes | None) -> None:
        """Writes `ledger` as it is (its serial kept) where there is no ledger yet, with its
        fingerprint key; refuses to replace either. Needs the lock."""
        with self._cloud_errors():
            self._holding().check()
            if key is not None:
                self._create_key(key)
                if self.stored_fingerprint_key() != key:
                    raise LedgerError(
                        f"fingerprint key {self._key_location()} exists and is another key; "
                        "refusing to replace it"
                    )
            data = encode(ledger, ledger.serial)
            try:
                self._blob().upload_from_string(data, content_type=JSON, if_generation_match=0)
            except PreconditionFailed:
                raise LedgerError(
                    f"ledger {self.location} exists; refusing to overwrite it"
                ) from None
            self._known = self._staged = None

    def retire(self) -> str:
        """Moves the ledger aside (`NAME.migrated`), and removes its backup and key, once it has
        been copied elsewhere; returns where it is kept. Needs the lock."""
        self._commits.flush()
        with self._cloud_errors():
            self._holding().check()
            known = self._current()
            aside = self._blob("migrated")
            aside.upload_from_string(known.data, content_type=JSON)
            try:
                self._blob().delete(if_generation_match=known.generation)
            except (NotFound, PreconditionFailed):
                raise LedgerConflict(
                    f"ledger {self.location} changed while it was being migrated; it is left "
                    "in place"
                ) from None
            for suffix in ("bak", "key"):
                with suppress(NotFound):
                    self._blob(suffix).delete()
            self._known = self._staged = None
            return f"{self.location}.migrated"

    # --- objects --------------------------------------------------------------------------

    def _blob(self, suffix: str = "") -> Any:
        name = f"{self.name}.{suffix}" if suffix else self.name
        return self._client().bucket(self.bucket).blob(name)

    def _lock_blob(self) -> Any:
        return self._blob("lock")

    def _key_location(self) -> str:
        return f"{self.location}.key"

    def _fetch(self, suffix: str = "") -> tuple[bytes, int] | None:
        """The object's bytes and generation, or None when it does not exist."""
        blob = self._blob(suffix)
        try:
            data = blob.download_as_bytes()
        except NotFound:
            return None
        return data, int(blob.generation)

    def exists(self) -> bool:
        with self._cloud_errors():
            return self._exists("")

    def _exists(self, suffix: str) -> bool:
        return self._blob(suffix).exists()

    def _read(self) -> tuple[Ledger, _Version] | None:
        fetched = self._fetch()
        if fetched is None:
            if self._exists("bak"):
                # Starting afresh here would forget every resource the backup knows of.
                raise LedgerCorrupt(
                    self.location, "the object is missing but its backup exists",
                    self.backup_location,
                )
            return None
        data, generation = fetched
        try:
            ledger = decode(data, self.location)
        except LedgerCorrupt as exc:
            backup = self.backup_location if self._exists("bak") else None
            raise LedgerCorrupt(self.location, exc.reason, backup) from None
        return ledger, _Version(ledger.lineage, ledger.serial, generation, data)

    def _current(self) -> _Version:
        if self._known is None:
            read = self._read()
            self._known = read[1] if read else _Version(None, 0, 0, b"")
        return self._known

    def _write(self, data: bytes, known: _Version) -> int:
        """Writes the ledger object if it is still at `known`'s generation; its new one."""
        blob = self._blob()
        try:
            blob.upload_from_string(data, content_type=JSON, if_generation_match=known.generation)
        except PreconditionFailed:
            return self._refused(data, known)
        return int(blob.generation)

    def _refused(self, data: bytes, known: _Version) -> int:
        current = self._blob()
        try:
            current.reload()
        except NotFound:
            found = "it has been deleted"
        else:
            # The client library retries a conditional upload whose answer was lost; the retry
            # then meets the first attempt's object, which is this very write.
            if current.md5_hash == base64.b64encode(hashlib.md5(data).digest()).decode():
                return int(current.generation)
            found = f"it is at generation {current.generation} now"
        raise LedgerConflict(
            f"ledger {self.location} was written by another run since this one read it: {found}, "
            f"and this run read generation {known.generation} (serial {known.serial}). The "
            "write was refused and nothing was overwritten: run the command again, which reads "
            "the ledger afresh"
        )

    def _create_key(self, key: bytes) -> None:
        # Another's key, created first, is kept: every fingerprint of a ledger uses one key.
        with suppress(PreconditionFailed):
            self._blob("key").upload_from_string(
                key.hex().encode() + b"\n", content_type="text/plain", if_generation_match=0
            )

    def _restore(self, force: bool, confirm: Confirm | None) -> Ledger | None:
        self._commits.flush()
        self._holding().check()
        backup = self._fetch("bak")
        if backup is None:
            raise LedgerError(f"ledger {self.location} has no backup to restore")
        restored = decode(backup[0], self.backup_location)
        current = self._fetch()
        intact = None
        if current is not None:
            with suppress(LedgerCorrupt):
                intact = decode(current[0], self.location)
        if intact is not None and not force:
            raise LedgerError(
                f"ledger {self.location} is intact (serial {intact.serial}); restoring its "
                f"backup (serial {restored.serial}) would discard its last write. Run provision "
                "ledger restore --force if that is what you want"
            )
        if confirm is not None and not confirm(restored, self.backup_location):
            return None
        serial = max(restored.serial, intact.serial if intact else 0) + 1
        generation = 0
        if current is not None:
            generation = current[1]
            # The replaced version is kept for inspection; the backup stays as it is.
            stamp = now().replace(":", "")
            self._blob(f"replaced-{stamp}").upload_from_string(current[0], content_type=JSON)
        data = encode(restored, serial)
        known = _Version(None, intact.serial if intact else 0, generation, b"")
        new_generation = self._write(data, known)
        restored.serial = serial
        self._known = _Version(restored.lineage, serial, new_generation, data)
        self._staged = None
        return restored

    def _holding(self) -> gcslock.HeldLock:
        if self._held is None:
            raise LedgerError(
                f"ledger {self.location} is written only by the run that holds its lock "
                "(store.lock())"
            )
        return self._held

    @contextmanager
    def _cloud_errors(self) -> Iterator[None]:
        """Cloud Storage's refusals, as messages that say what to do. A NotFound that gets here
        is the bucket's: each missing object is expected where it is read."""
        try:
            yield
        except (Forbidden, Unauthorized) as exc:
            raise LedgerError(
                f"ledger {self.location}: Cloud Storage refused access ({exc.message}). Its "
                f"users need roles/storage.objectUser on bucket {self.bucket} (README: Team use)"
            ) from None
        except NotFound as exc:
            raise LedgerError(
                f"ledger {self.location}: bucket {self.bucket} was not found ({exc.message}). "
                "Create it first (README: Team use)"
            ) from None
