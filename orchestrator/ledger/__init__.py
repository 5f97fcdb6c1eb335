"""The ledger: every resource a plan instance owns, kept so a run can resume, roll back or destroy.

How the engine uses it:

    store = open_store(".provision/net.ledger.json")
    with store.lock(command="apply") as lock:
        ledger = store.load()
        ...
        store.save(ledger)  # before and after every mutating call (write-ahead)
"""

from __future__ import annotations

from orchestrator.ledger.codec import spec_fingerprint
from orchestrator.ledger.errors import LedgerConflict, LedgerCorrupt, LedgerError, LockHeld
from orchestrator.ledger.fingerprint import fingerprint_matches, keyed_fingerprint
from orchestrator.ledger.local import LocalStore
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
    "keyed_fingerprint",
    "open_store",
    "spec_fingerprint",
]


def open_store(location: str) -> Store:
    """The store for `location`: a file path, or (later) gs://BUCKET/PATH."""
    scheme, sep, _ = location.partition("://")
    if sep:
        if scheme == "gs":
            raise LedgerError(
                f"ledger {location}: Cloud Storage ledgers are not supported yet; use a local path"
            )
        raise LedgerError(f"ledger {location}: unknown scheme {scheme}://; use a local path")
    return LocalStore(location)
