"""Moving a ledger, with its fingerprint key, from one store to another (a local file to a bucket
or back), under both stores' locks so that no run writes either meanwhile.

The copy is written as it is (same lineage, serial, runs) and read back before the source is
retired: moved aside as `NAME.migrated`, its backup and key removed, so that a run pointed at the
old location by habit starts no second history of the same resources (and if it starts a new one,
the ownership markers on the resources refuse it them).
"""

from __future__ import annotations

from orchestrator.ledger.errors import LedgerError
from orchestrator.ledger.model import Ledger
from orchestrator.ledger.store import Store


def migrate(source: Store, target: Store) -> tuple[Ledger, str]:
    """Moves the ledger of `source` to `target`, which must hold none; returns it and where the
    source's old copy is kept."""
    if source.location == target.location:
        raise LedgerError(f"ledger {source.location} cannot be migrated onto itself")
    with source.lock("ledger migrate"), target.lock("ledger migrate"):
        ledger = source.load()
        if ledger.serial == 0:
            raise LedgerError(f"ledger {source.location} does not exist: nothing to migrate")
        existing = target.load()
        if existing.serial != 0:
            raise LedgerError(
                f"ledger {target.location} exists (serial {existing.serial}); migrate refuses to "
                "overwrite it"
            )
        target.put_new(ledger, source.stored_fingerprint_key())
        if target.load().to_dict() != ledger.to_dict():
            raise LedgerError(
                f"ledger {target.location} does not read back as the ledger written there; "
                f"{source.location} is left as it was"
            )
        return ledger, source.retire()
