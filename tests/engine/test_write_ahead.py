"""Write-ahead, as the cloud sees it: when a create arrives at the emulator, the ledger on disk
already holds its intent (with the request id it carries); when its operation is first polled,
the operation's name. Read from disk by another reader at that moment, not from the run's
memory: a run killed there must find them."""

from __future__ import annotations

from typing import Any

from orchestrator.ledger import LocalStore

from .conftest import BASICS

INSERTS = {
    "compute.networks.insert": "vpc",
    "compute.subnetworks.insert": "subnet",
    "compute.firewalls.insert": "fw",
}


def test_the_intent_and_the_operation_are_on_disk_before_the_calls_that_need_them(
    emulator, deploy
) -> None:
    dep = deploy(BASICS, parallelism=3)
    seen: list[tuple[Any, ...]] = []

    def on_disk(entry: dict[str, Any]) -> None:
        method = entry["method"]
        if method in INSERTS:
            record = LocalStore(dep.ledger_location).load().resources.get(INSERTS[method])
            operation = record.operation if record else None
            seen.append((
                INSERTS[method], record.status if record else None,
                operation.action if operation else None,
                bool(operation and operation.request_id),
            ))
        elif method.endswith("Operations.wait"):
            name = entry["path"].removesuffix("/wait").rsplit("/", 1)[-1]
            recorded = {
                r.operation.name
                for r in LocalStore(dep.ledger_location).load().resources.values()
                if r.operation
            }
            seen.append(("wait", name in recorded))

    emulator.add_request_listener(on_disk)
    try:
        assert dep.apply().ok
    finally:
        emulator.remove_request_listener(on_disk)
    creates = sorted(s for s in seen if s[0] != "wait")
    assert creates == [(step, "pending", "create", True) for step in ("fw", "subnet", "vpc")]
    assert [s for s in seen if s[0] == "wait"] == [("wait", True)] * 3
