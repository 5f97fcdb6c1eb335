"""The Cloud Storage ledger's lock: an object beside the ledger (`NAME.lock`) with a lease.

It is taken by creating the object with ifGenerationMatch=0, which only one of any number of racing
creates can do. As in Terraform's GCS backend, the lock id is the generation that create gave the
object, and a release or `provision unlock ID` deletes it with ifGenerationMatch=ID: it removes
that lock and never a later one.

What Terraform's lock lacks, added here:
- A lease. The holder renews it, every third of its length, by patching the object's metadata. A
  patch moves the metageneration and the server's `updated` time but keeps the generation, so the
  lock id stays the same for the lock's whole life. (Rewriting the object would give every renewal
  a new generation: the id would then have to be a field inside, and an unlock would become a read,
  a compare and a delete that a renewal could slip between.) A lock not renewed for longer than
  its lease belongs to a holder that is gone, killed or cut off, and is taken over by rewriting it
  on condition of both its generation and its metageneration, which fails if the holder renewed
  meanwhile or another waiter took it first. The new generation is the new lock's id. Expiry
  compares the server's `updated` time with this host's clock, so a host whose clock runs far
  ahead takes over early; what that costs is bounded by the ledger's preconditions (below).
  Leases and renewals are timed on the engine's clock: on an emulator's virtual clock, a lease is
  simulated time, as the emulator's `updated` times are.
- terraform#30149: a lock released between another's failed create and its read of the holder is
  free, so the create is tried again instead of failing the run.
- A create whose answer was lost, and that the client library retried, meets the object it made
  itself: the random token in the metadata tells it so.

Who holds the lock, its lease and its token are the object's metadata, so one read returns them
with the generation and metageneration they belong to; the object's content repeats who holds it
for people who look at the bucket.

A holder that could not renew for a whole lease stops writing the ledger (another may have taken
over), and the ledger's own generation preconditions stop even a late write from overwriting a
newer one: the lease bounds how long others wait, the preconditions keep every write.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud.storage.retry import DEFAULT_RETRY

from orchestrator.ledger.errors import LedgerError, LockHeld
from orchestrator.ledger.model import now
from orchestrator.ledger.store import Lock, LockInfo

LEASE_SECONDS = 60.0
# Attempts in one acquisition; each failed one means the lock changed hands under it meanwhile.
_ROUNDS = 20
_WHO = ("pid", "host", "user", "command", "started")

Blob = Callable[[], Any]  # a new google-cloud-storage Blob of the lock object, for this thread


@dataclass(frozen=True)
class Holder:
    """A lock object as read."""

    generation: int
    metageneration: int
    expires: datetime
    token: str
    info: LockInfo

    def expired(self, clock: Any) -> bool:
        return datetime.fromtimestamp(clock.time(), UTC) >= self.expires

    def expires_text(self) -> str:
        return self.expires.isoformat(timespec="seconds").replace("+00:00", "Z")


class HeldLock:
    """A lock this process holds, renewed by a background thread until `release`."""

    def __init__(
        self, blob: Blob, location: str, lock: Lock, lease: float, taken: float, clock: Any
    ) -> None:
        self.lock = lock
        self._blob = blob
        self._location = location
        self._generation = int(lock.id)
        self._lease = lease
        self._clock = clock
        # The clock's time until which no other process can take the lock over: a lease from
        # the moment the last successful write of the lock object was sent.
        self._valid_until = taken + lease
        self._lost = ""
        self._last_error = ""
        self._stop = threading.Event()
        # The renewer works on the clock from its first moment: the token is made here, by the
        # thread that took the lock, so its renewals fall at the same simulated times each run.
        token = clock.grant()
        self._renewer = threading.Thread(
            target=self._renew, args=(token,), name=f"lease {location}", daemon=True
        )
        self._renewer.start()

    def check(self) -> None:
        """Raises LedgerError if the lock may no longer be this process's: the ledger must not
        be written then."""
        if self._lost:
            raise LedgerError(
                f"ledger {self._location}: this run lost its lock {self.lock.id} ({self._lost}); "
                "nothing more is written. Run the command again once the other run is done"
            )
        if self._clock.now() >= self._valid_until:
            raise LedgerError(
                f"ledger {self._location}: this run could not renew the lease of its lock "
                f"{self.lock.id} for {self._lease:g} s ({self._last_error or 'no answer'}), so "
                "another run may have taken it over; nothing more is written. Run the command "
                "again"
            )

    def release(self) -> None:
        self._clock.set(self._stop)  # cuts the renewer's sleep short
        with self._clock.idle():
            self._renewer.join()
        # NotFound or PreconditionFailed: already taken over or unlocked (check() said so to any
        # write since), or a retried delete whose first attempt succeeded.
        with suppress(NotFound, PreconditionFailed):
            self._blob().delete(if_generation_match=self._generation)

    def _renew(self, token: Any) -> None:
        try:
            with self._clock.adopt(token):
                self._renew_until_stopped()
        finally:
            self._clock.retire(token)

    def _renew_until_stopped(self) -> None:
        interval = self._lease / 3
        # Each renewal gives up by the next one, so a release never waits long for it.
        retry = DEFAULT_RETRY.with_timeout(interval)
        # Its client is built now, before the run's step threads build theirs: clients are
        # built one at a time (ClientFactory), and the first compute client alone takes over
        # a second, longer than a short lease.
        blob = self._blob()
        while not self._clock.wait(self._stop, interval):
            sent = self._clock.now()
            blob.metadata = {"renewed": now()}
            try:
                blob.patch(
                    if_generation_match=self._generation, timeout=max(1.0, interval), retry=retry
                )
            except NotFound:
                self._lost = "it was removed, by `provision unlock`"
                return
            except PreconditionFailed:
                self._lost = "another run took it over after its lease expired"
                return
            # Anything else (network, 5xx after the library's retries) may pass before the lease
            # does: keep trying, and let check() stop the writes if it does not.
            except Exception as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                continue
            self._valid_until = sent + self._lease
            self._last_error = ""


def acquire(blob: Blob, location: str, command: str, lease: float, clock: Any) -> HeldLock:
    """Takes the lock, or takes over one whose lease has expired; raises LockHeld otherwise.
    clock: the engine's (gcp.clock), on which the lease is timed."""
    token = secrets.token_hex(8)
    mine = LockInfo.mine("", command)
    holder: Holder | None = None
    for _ in range(_ROUNDS):
        sent = clock.now()
        generation = _write(blob, mine, lease, token, if_generation_match=0)
        if generation is not None:
            return _held(blob, location, mine, generation, lease, sent, None, clock)
        holder = read(blob)
        if holder is None:
            continue  # released since the create failed: free, so create again (#30149)
        if holder.token == token:
            return _held(blob, location, mine, holder.generation, lease, sent, None, clock)
        if not holder.expired(clock):
            raise LockHeld(location, holder.info, lease_expires=holder.expires_text())
        sent = clock.now()
        generation = _write(
            blob,
            mine,
            lease,
            token,
            if_generation_match=holder.generation,
            if_metageneration_match=holder.metageneration,
        )
        if generation is not None:
            return _held(blob, location, mine, generation, lease, sent, holder.info, clock)
    raise LockHeld(location, holder.info if holder else None)


def read(blob: Blob) -> Holder | None:
    """The lock object's holder, or None when there is no lock."""
    obj = blob()
    try:
        obj.reload()
    except NotFound:
        return None
    meta = obj.metadata or {}
    try:
        lease = float(meta.get("lease-seconds", LEASE_SECONDS))
        pid = int(meta.get("pid", 0))
    except ValueError:
        # Not written by provision: treat it as a lock with the default lease.
        lease, pid = LEASE_SECONDS, 0
    info = LockInfo(
        id=str(obj.generation),
        pid=pid,
        host=meta.get("host", "unknown"),
        user=meta.get("user", "unknown"),
        command=meta.get("command", "unknown"),
        started=meta.get("started", "unknown"),
    )
    return Holder(
        generation=int(obj.generation),
        metageneration=int(obj.metageneration),
        expires=obj.updated + timedelta(seconds=lease),
        token=meta.get("token", ""),
        info=info,
    )


def force_unlock(blob: Blob, location: str, lock_id: str) -> LockInfo:
    try:
        generation = int(lock_id)
    except ValueError:
        raise LedgerError(
            f"{lock_id!r} is not a lock id of ledger {location}: its lock ids are the lock "
            "object's generation, a number"
        ) from None
    while True:
        holder = read(blob)
        if holder is None:
            raise LedgerError(f"ledger {location} is not locked")
        if holder.generation != generation:
            raise LedgerError(
                f"lock {lock_id} is not the lock of ledger {location}; that is held by "
                f"{holder.info.describe()}"
            )
        try:
            blob().delete(if_generation_match=generation)
        except (NotFound, PreconditionFailed):
            continue  # it changed since it was read: say what is there now
        return holder.info


def _held(
    blob: Blob,
    location: str,
    mine: LockInfo,
    generation: int,
    lease: float,
    sent: float,
    stale: LockInfo | None,
    clock: Any,
) -> HeldLock:
    lock = Lock(replace(mine, id=str(generation)), stale_previous=stale)
    return HeldLock(blob, location, lock, lease, sent, clock)


def _write(blob: Blob, mine: LockInfo, lease: float, token: str, **conditions: int) -> int | None:
    """Writes the lock object on `conditions`; its new generation, or None if they failed."""
    obj = blob()
    who = {name: str(getattr(mine, name)) for name in _WHO}
    obj.metadata = {**who, "lease-seconds": f"{lease:g}", "token": token}
    record = json.dumps({**mine.to_dict(), "id": "the object's generation"}, indent=2)
    try:
        obj.upload_from_string(record.encode(), content_type="application/json", **conditions)
    except PreconditionFailed:
        return None
    return int(obj.generation)
