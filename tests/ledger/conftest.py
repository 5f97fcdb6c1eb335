"""Fixtures of the ledger tests: a store in a temporary directory and ledgers to put in it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger, LocalStore, Operation, ResourceRecord


def sample_ledger(resources: int = 3) -> Ledger:
    """A ledger with every field in use: an apply run, records in several states, unicode."""
    ledger = Ledger.new("psc-cloud-run")
    run = ledger.begin_run("apply")
    for i in range(resources):
        step = f"subnet-{i}"
        ledger.resources[step] = ResourceRecord(
            step_id=step,
            kind="compute.subnetwork",
            path=f"projects/p/regions/europe-west1/subnetworks/{step}",
            status="present" if i % 2 else "in_flight",
            fingerprint="sha256:" + "0" * 64,
            spec={
                "ipCidrRange": f"10.0.{i % 256}.0/24",
                "description": "réseau — 网络",
                "logConfig": {"enable": True, "flowSampling": 0.5},
                "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": "172.16.0.0/20"}],
            },
            outputs={"selfLink": f"https://compute.example/{step}", "id": str(10**18 + i)},
            operation=None
            if i % 2
            else Operation("operation-17-abc", "compute", "create", "2024-05-01T10:00:00.000Z"),
            previous_spec={"ipCidrRange": "10.9.0.0/24"} if i == 1 else None,
            origin="adopted" if i == 2 else "created",
            created_run=run.id,
            updated_run=run.id,
            error="quota exceeded" if i == 3 else None,
            depends_on=["net"],
        )
        run.act(step, "create", "succeeded")
        run.events.append({"type": "step.finished", "step": step, "elapsed": 1.5})
    return ledger


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "plan.ledger.json")


@pytest.fixture
def saved(store: LocalStore) -> Callable[[Ledger], Ledger]:
    """Saves a ledger under the lock (the way a run does) and returns it."""

    def save(ledger: Ledger) -> Ledger:
        with store.lock(command="apply"):
            store.save(ledger)
        return ledger

    return save


@pytest.fixture
def make_ledger() -> Callable[..., Ledger]:
    return sample_ledger
