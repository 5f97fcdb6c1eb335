"""Errors of the ledger layer. Their messages are shown to users as they are, without a traceback,
so each one says what happened, to which file, and what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.ledger.store import LockInfo


class LedgerError(Exception):
    """Anything wrong with a ledger, its lock or its key; the CLI prints it and exits 2."""


class LedgerCorrupt(LedgerError):
    """The ledger failed its checksum or does not parse: it must not be used, not even read."""

    def __init__(self, location: str, reason: str, backup: str | None = None) -> None:
        self.location = location
        self.reason = reason
        self.backup = backup
        if backup:
            advice = (
                f"Its last good version is kept in {backup}: `provision ledger restore "
                f"--ledger {location}` shows it and puts it back."
            )
        else:
            advice = "No backup is available to restore."
        super().__init__(f"ledger {location} is corrupt: {reason}. {advice}")


class LedgerConflict(LedgerError):
    """The ledger in the store is not the one the caller loaded: writing would lose a write."""


class LockHeld(LedgerError):
    """Another run holds the ledger's lock (or may: a holder on another host cannot be checked)."""

    def __init__(
        self,
        location: str,
        holder: LockInfo | None,
        foreign: bool = False,
        lease_expires: str | None = None,
    ) -> None:
        self.location = location
        self.holder = holder
        self.foreign = foreign
        self.lease_expires = lease_expires
        if holder is not None and lease_expires is not None:
            message = (
                f"ledger {location} is locked by {holder.describe()}; its lease runs until "
                f"{lease_expires} and is renewed while that run lives. Wait for it to finish "
                "(--lock-timeout SECONDS waits for it); if that run is gone, its lock is taken "
                "over once the lease expires, or "
                f"`provision unlock {holder.id} --ledger {location}` frees it now"
            )
        elif holder is None:
            # Only while a new holder is between taking the lock and writing its record.
            message = (
                f"ledger {location} is locked by another run that has not yet written who it "
                "is; try again in a moment"
            )
        elif foreign:
            message = (
                f"ledger {location} is locked by {holder.describe()}. That host is not this "
                "one, so whether the process is still running cannot be checked from here; if "
                f"it is gone, run `provision unlock {holder.id} --ledger {location}`"
            )
        else:
            message = (
                f"ledger {location} is locked by {holder.describe()}. Wait for that run to finish"
            )
        super().__init__(message)
