"""Run as a separate process by the lock tests.

`lock_holder.py hold LEDGER` takes the lock, saves the ledger, prints the lock record as JSON and
holds the lock until standard input closes (or the process is killed).
`lock_holder.py try LEDGER` tries the lock once and prints {"acquired": ...} or {"refused": ...}.
"""

from __future__ import annotations

import json
import sys

from orchestrator.ledger import LocalStore, LockHeld


def main(mode: str, path: str) -> None:
    store = LocalStore(path)
    if mode == "hold":
        with store.lock(command="apply") as lock:
            store.save(store.load())
            print(json.dumps(lock.info.to_dict()), flush=True)
            sys.stdin.read()
        return
    try:
        with store.lock(command="plan") as lock:
            print(json.dumps({"acquired": lock.info.to_dict()}))
    except LockHeld as e:
        refused = e.holder.to_dict() if e.holder else None
        print(json.dumps({"refused": refused, "message": str(e)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
