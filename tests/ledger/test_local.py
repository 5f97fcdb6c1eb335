from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.ledger import (
    Ledger,
    LedgerConflict,
    LedgerCorrupt,
    LedgerError,
    LocalStore,
    open_store,
)
from orchestrator.ledger.codec import encode

Save = Callable[[Ledger], Ledger]
Make = Callable[..., Ledger]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_ledger_loads_as_new(store: LocalStore) -> None:
    ledger = store.load()
    assert (ledger.serial, ledger.resources, ledger.runs) == (0, {}, [])
    assert not store.path.exists()


def test_round_trip_through_the_file(store: LocalStore, saved: Save, make_ledger: Make) -> None:
    ledger = saved(make_ledger(5))
    assert store.load() == ledger


def test_each_save_increments_the_serial(store: LocalStore, make_ledger: Make) -> None:
    ledger = make_ledger()
    with store.lock(command="apply"):
        for expected in (1, 2, 3):
            store.save(ledger)
            assert ledger.serial == expected
            assert store.load().serial == expected


def test_the_previous_version_is_kept_as_bak(store: LocalStore, make_ledger: Make) -> None:
    ledger = make_ledger()
    with store.lock(command="apply"):
        store.save(ledger)
        first = store.path.read_bytes()
        ledger.resources["subnet-0"].status = "present"
        store.save(ledger)
    assert store.backup_path.read_bytes() == first
    assert LocalStore(store.backup_path).load().resources["subnet-0"].status == "in_flight"
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_files_are_private_whatever_the_umask(store: LocalStore, saved: Save, make_ledger: Make):
    old = os.umask(0o022)
    try:
        ledger = saved(make_ledger())
        saved(ledger)
        store.fingerprint_key()
    finally:
        os.umask(old)
    for path in (store.path, store.backup_path, store.lock_path, store.key_path):
        assert mode(path) == 0o600, path


def test_the_backup_is_copied_where_hard_links_fail(
    store: LocalStore, saved: Save, make_ledger: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = saved(make_ledger())
    first = store.path.read_bytes()

    def no_links(*_: object) -> None:
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    saved(ledger)
    assert store.backup_path.read_bytes() == first
    assert mode(store.backup_path) == 0o600


def test_saving_without_the_lock_is_refused(store: LocalStore, make_ledger: Make) -> None:
    with pytest.raises(LedgerError, match="only by the run that holds its lock"):
        store.save(make_ledger())
    assert not store.path.exists()


def test_a_stale_copy_cannot_overwrite_a_newer_ledger(
    store: LocalStore, saved: Save, make_ledger: Make
) -> None:
    saved(make_ledger())
    stale = store.load()
    newer = store.load()
    saved(newer)
    with store.lock(command="apply"), pytest.raises(LedgerConflict, match="serial 2.*serial 1"):
        store.save(stale)
    assert store.load() == newer


def test_another_plan_instance_cannot_overwrite_the_ledger(
    store: LocalStore, saved: Save, make_ledger: Make
) -> None:
    saved(make_ledger())
    other = Ledger.new("other")
    other.serial = 1
    with store.lock(command="apply"), pytest.raises(LedgerConflict, match="lineage"):
        store.save(other)


def test_truncation_is_detected_and_the_backup_restores(
    store: LocalStore, make_ledger: Make
) -> None:
    ledger = make_ledger()
    with store.lock(command="apply"):
        store.save(ledger)
        ledger.resources["subnet-0"].status = "present"
        store.save(ledger)
    data = store.path.read_bytes()
    store.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LedgerCorrupt) as caught:
        store.load()
    message = str(caught.value)
    assert str(store.path) in message and str(store.backup_path) in message
    assert "provision ledger restore" in message

    restored = store.restore_backup()
    assert restored.serial == 2
    assert restored.resources["subnet-0"].status == "in_flight"
    assert store.load() == restored
    kept = [p for p in store.path.parent.iterdir() if ".replaced-" in p.name]
    assert [p.read_bytes() for p in kept] == [data[: len(data) // 2]]


def test_an_edited_value_is_detected(store: LocalStore, saved: Save, make_ledger: Make) -> None:
    saved(make_ledger())
    text = store.path.read_text().replace('"status":"present"', '"status":"deleting"', 1)
    store.path.write_text(text)
    with pytest.raises(LedgerCorrupt, match="checksum does not match"):
        store.load()


def test_reindenting_the_file_keeps_it_valid(
    store: LocalStore, saved: Save, make_ledger: Make
) -> None:
    ledger = saved(make_ledger())
    store.path.write_text(json.dumps(json.loads(store.path.read_text()), indent=2))
    assert store.load() == ledger


def test_a_corrupt_ledger_cannot_be_saved_over(
    store: LocalStore, saved: Save, make_ledger: Make
) -> None:
    ledger = saved(make_ledger())
    store.path.write_bytes(b"{")
    with store.lock(command="apply"), pytest.raises(LedgerCorrupt):
        store.save(ledger)
    assert store.path.read_bytes() == b"{"


def test_a_missing_ledger_with_a_backup_is_not_started_afresh(
    store: LocalStore, saved: Save, make_ledger: Make
) -> None:
    ledger = saved(saved(make_ledger()))
    store.path.unlink()
    with pytest.raises(LedgerCorrupt, match="missing but its backup exists"):
        store.load()
    assert store.restore_backup().resources == ledger.resources


def test_restore_refuses_to_replace_an_intact_ledger_unless_forced(
    store: LocalStore, saved: Save, make_ledger: Make
) -> None:
    ledger = saved(saved(make_ledger()))
    with pytest.raises(LedgerError, match="is intact"):
        store.restore_backup()
    assert store.load() == ledger
    assert store.restore_backup(force=True).serial == 3


def test_restore_without_a_backup(store: LocalStore) -> None:
    with pytest.raises(LedgerError, match="no backup"):
        store.restore_backup()


def test_a_corrupt_backup_is_not_restored(store: LocalStore) -> None:
    store.path.write_bytes(b"")
    store.backup_path.write_bytes(b"garbage")
    with pytest.raises(LedgerCorrupt, match=r"\.bak is corrupt.*No backup"):
        store.restore_backup()


def test_a_newer_format_is_not_called_corrupt(store: LocalStore, make_ledger: Make) -> None:
    ledger = make_ledger()
    ledger.format = 2
    store.path.write_bytes(encode(ledger, 1))
    with pytest.raises(LedgerError, match="format 2, written by a newer provision") as caught:
        store.load()
    assert not isinstance(caught.value, LedgerCorrupt)


def test_open_store_picks_the_store(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "a.json")), LocalStore)
    assert type(open_store("gs://bucket/a.json", storage=lambda: None)).__name__ == "GcsStore"
    with pytest.raises(ValueError, match="needs a storage client"):
        open_store("gs://bucket/a.json")
    with pytest.raises(LedgerError, match="unknown scheme"):
        open_store("s3://bucket/a.json")


def test_saving_a_thousand_resources_is_cheap(store: LocalStore, make_ledger: Make) -> None:
    ledger = make_ledger(1000)
    with store.lock(command="apply"):
        store.save(ledger)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            store.save(ledger)
            times.append(time.perf_counter() - start)
    # About 30 ms on the development machine; the bound only catches a change of scale.
    assert sorted(times)[2] < 0.5
