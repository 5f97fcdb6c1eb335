"""refresh through the Python API: every recorded resource read side by side, one that cannot be
read reported without touching its record."""

from __future__ import annotations

from provision_emulator import Emulator


def test_refresh_reads_side_by_side(emulator: Emulator, deploy) -> None:
    dep = deploy()
    assert dep.apply().ok
    before = len(emulator.requests())
    # Each request is answered after a second: one at a time, the three reads would arrive a
    # second or more apart.
    emulator.set_faults(latency=1.0)
    result = dep.refresh()
    assert result.ok and set(result.actions.values()) == {"refresh"}
    arrivals = [r["time"] for r in emulator.requests()[before:]]
    assert len(arrivals) == 3
    assert max(arrivals) - min(arrivals) < 0.5


def test_a_read_that_fails_is_reported_and_its_record_kept(emulator: Emulator, deploy) -> None:
    dep = deploy()
    assert dep.apply().ok
    recorded = dep.ledger().resources["fw"]
    emulator.set_faults(unavailable=1.0, methods=["compute.firewalls.get"])
    result = dep.refresh()
    assert [f.step for f in result.failures] == ["fw"]
    assert "503" in result.failures[0].message
    assert result.actions == {"vpc": "refresh", "subnet": "refresh"}
    kept = dep.ledger().resources["fw"]
    assert (kept.status, kept.outputs, kept.error) == (
        recorded.status, recorded.outputs, recorded.error)
