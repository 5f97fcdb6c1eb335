"""The ledger: every resource a plan instance owns, kept so a run can resume, roll back or destroy.

How the engine uses it:

    store = open_store(".provision/net.ledger.json")
    with store.lock(command="apply") as lock:
        ledger = store.load()
        ...
        store.save(ledger)  # before and after every mutating call (write-ahead)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.ledger.codec import spec_fingerprint
from orchestrator.ledger.errors import LedgerConflict, LedgerCorrupt, LedgerError, LockHeld
from orchestrator.ledger.fingerprint import fingerprint_matches, keyed_fingerprint
from orchestrator.ledger.local import LocalStore
from orchestrator.ledger.migrate import migrate
from orchestrator.ledger.model import Action, Ledger, Operation, ResourceRecord, Run
from orchestrator.ledger.store import Lock, LockInfo, Store

__all__ = [
    "Action",
    "Ledger",
    "LedgerConflict",
    "LedgerCorrupt",
    "LedgerError",
    "LocalStore",
    "Lock",
    "LockHeld",
    "LockInfo",
    "Operation",
    "ResourceRecord",
    "Run",
    "Store",
    "fingerprint_matches",
    "is_remote",
    "keyed_fingerprint",
    "migrate",
    "open_store",
    "spec_fingerprint",
]


def is_remote(location: str) -> bool:
    """Whether `location` names a ledger in Cloud Storage (gs://) rather than a file."""
    return location.startswith("gs://")


def open_store(
    location: str,
    *,
    storage: Callable[[], Any] | None = None,
    lock_timeout: float = 0.0,
    lease: float | None = None,
    clock: Any = None,
) -> Store:
    """The store for `location`: a file path, or gs://BUCKET/PATH/NAME.json.

    storage: returns a google-cloud-storage Client for the calling thread (ClientFactory.storage);
        needed for gs://. lock_timeout: seconds to wait for a lock another run holds.
    lease: seconds a Cloud Storage lock lasts unless renewed (default gcslock.LEASE_SECONDS).
    clock: the engine's (gcp.clock), on which lock waits and leases are timed.
    """
    scheme, sep, _ = location.partition("://")
    if not sep:
        return LocalStore(location, lock_timeout=lock_timeout, clock=clock)
    if scheme != "gs":
        raise LedgerError(
            f"ledger {location}: unknown scheme {scheme}://; use a local path or gs://"
        )
    # Imported here: only a gs:// ledger needs the Cloud Storage client library loaded.
    from orchestrator.ledger.gcs import GcsStore
    from orchestrator.ledger.gcslock import LEASE_SECONDS

    if storage is None:
        raise ValueError(f"ledger {location}: a Cloud Storage ledger needs a storage client")
    if lease is not None and lease <= 0:
        raise LedgerError(f"ledger {location}: the lock lease must be positive, not {lease:g}")
    return GcsStore(
        location, storage, lock_timeout=lock_timeout, lease=lease or LEASE_SECONDS, clock=clock
    )
