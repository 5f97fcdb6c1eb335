"""Run as a separate process by the Cloud Storage lock tests.

`gcs_holder.py EMULATOR_URL LOCATION LEASE` takes the ledger's lock with that lease, saves the
ledger, prints the lock record as JSON and holds the lock (renewing its lease) until standard
input closes or the process is killed.
"""

from __future__ import annotations

import json
import sys

from google.auth.credentials import AnonymousCredentials

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.clock import for_emulator
from orchestrator.ledger import open_store


def main(url: str, location: str, lease: str) -> None:
    clients = ClientFactory(credentials=AnonymousCredentials(), emulator_url=url)
    clock = for_emulator(url)  # the emulator's virtual clock: the lease is simulated time
    store = open_store(location, storage=clients.storage, lease=float(lease), clock=clock)
    # At work while it holds the lock, as a run is: the clock stands still until it dies.
    with clock.busy(), store.lock(command="apply") as lock:
        store.save(store.load())
        print(json.dumps(lock.info.to_dict()), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(*sys.argv[1:4])
