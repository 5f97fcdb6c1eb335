"""Destroy one step at a time: dependents first, whatever order the ledger keeps."""

from __future__ import annotations

from .conftest import BASICS, mutating


def test_destroy_with_parallelism_1_deletes_dependents_first(emulator, deploy) -> None:
    dep = deploy(BASICS, parallelism=1)
    assert dep.apply().ok
    before = len(emulator.requests())
    result = dep.destroy()
    assert result.ok, (result.failures, result.cancelled)
    deletes = [r["method"] for r in mutating(emulator, before)]
    assert deletes.index("compute.networks.delete") > max(
        deletes.index("compute.subnetworks.delete"), deletes.index("compute.firewalls.delete")
    )
    assert dep.ledger().resources == {}
