"""Where a fleet keeps what its runners share: each instance's status record, and the locks of
Google's one-operation-at-a-time parents (an Apigee organization, a Cloud Router, a network's
peerings) that instances in other runners may change at the same time.

A local directory serves runners on one machine (status files; locks are `flock`ed files, freed
when their process dies). A `gs://BUCKET/PREFIX` serves runners anywhere (Cloud Run tasks): the
locks are the ledger lock's objects, with its lease (ledger/gcslock.py), so a runner that dies
holding one delays the others by at most a lease.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from orchestrator.ledger import filelock, gcslock, waiting

# How long a step may queue for a lock another runner holds: as long as the slowest of
# Google's serialized operations (an Apigee organization) several times over.
LOCK_WAIT = 6 * 3600.0


class Space:
    """A fleet's shared place: `state` is a directory or gs://BUCKET/PREFIX. `storage` gives a
    google-cloud-storage client (this thread's) for the latter."""

    def __init__(self, state: str, storage: Callable[[], Any] | None = None) -> None:
        self.state = state.rstrip("/")
        self.remote = state.startswith("gs://")
        if self.remote:
            self._bucket, _, prefix = self.state.removeprefix("gs://").partition("/")
            self._prefix = f"{prefix}/" if prefix else ""
            self._storage = storage
        else:
            self._dir = Path(self.state)

    # --- status records -------------------------------------------------------------------

    def write_status(self, instance: str, record: dict[str, Any]) -> None:
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        if self.remote:
            self._blob(f"status/{instance}.json").upload_from_string(
                data, content_type="application/json")
            return
        path = self._dir / "status" / f"{instance}.json"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # never a half-written record

    def read_status(self, instance: str) -> dict[str, Any] | None:
        if self.remote:
            blob = self._blob(f"status/{instance}.json")
            from google.api_core.exceptions import NotFound

            try:
                raw = blob.download_as_bytes()
            except NotFound:
                return None
        else:
            try:
                raw = (self._dir / "status" / f"{instance}.json").read_bytes()
            except FileNotFoundError:
                return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    # --- shared locks ---------------------------------------------------------------------

    def locks(self, clock: Any, holder: str) -> Callable[[str], Any]:
        """The engine's `shared_locks` for a run on `clock`, by `holder` (the instance)."""
        return lambda key: self._lock(key, clock, holder)

    @contextmanager
    def _lock(self, key: str, clock: Any, holder: str) -> Iterator[None]:
        name = f"locks/{quote(key, safe='')}.lock"
        location = f"{self.state}/{name}"
        if self.remote:
            held: Any = waiting.within(
                LOCK_WAIT,
                lambda: gcslock.acquire(lambda: self._blob(name), location, f"fleet {holder}",
                                        gcslock.LEASE_SECONDS, clock),
                clock)
        else:
            held = waiting.within(
                LOCK_WAIT,
                lambda: filelock.acquire(self._dir / name, location, f"fleet {holder}"),
                clock)
        try:
            yield
        finally:
            held.release()

    def _blob(self, name: str) -> Any:
        assert self._storage is not None
        return self._storage().bucket(self._bucket).blob(f"{self._prefix}{name}")
