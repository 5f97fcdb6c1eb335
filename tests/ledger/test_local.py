from __future__ import annotations

import json
import os
import stat
import threading
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
    LockHeld,
    open_store,
)
from orchestrator.ledger.codec import encode

Save = Callable[[Ledger], Ledger]
Make = Callable[..., Ledger]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def finished(ledger: Ledger) -> Ledger:
    """The ledger as its run leaves it when it ends: what the backup keeps."""
    ledger.runs[-1].finish("succeeded")
    return ledger


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


def test_the_backup_is_the_ledger_as_the_last_finished_run_left_it(
    store: LocalStore, make_ledger: Make
) -> None:
    ledger = make_ledger()
    with store.lock(command="apply"):
        store.save(ledger)
        assert not store.backup_path.exists()  # no run has finished
        ledger.resources["subnet-0"].status = "present"
        ledger.runs[-1].finish("succeeded")
        store.save(ledger)
        ended = store.path.read_bytes()
        assert store.backup_path.read_bytes() == ended
        ledger.begin_run("destroy")
        del ledger.resources["subnet-0"]
        store.save(ledger)
        _staged_save(store, ledger, "subnet-1")
    assert store.backup_path.read_bytes() == ended
    assert LocalStore(store.backup_path).load().resources["subnet-0"].status == "present"
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_files_are_private_whatever_the_umask(store: LocalStore, saved: Save, make_ledger: Make):
    old = os.umask(0o022)
    try:
        ledger = saved(finished(make_ledger()))
        saved(ledger)
        store.fingerprint_key()
    finally:
        os.umask(old)
    for path in (store.path, store.backup_path, store.lock_path, store.key_path):
        assert mode(path) == 0o600, path


def test_what_a_restore_replaces_is_copied_aside_where_hard_links_fail(
    store: LocalStore, saved: Save, make_ledger: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved(finished(make_ledger()))
    replaced = store.path.read_bytes()

    def no_links(*_: object) -> None:
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    store.restore_backup(force=True)
    aside = [p for p in store.path.parent.iterdir() if ".replaced-" in p.name]
    assert [p.read_bytes() for p in aside] == [replaced]
    assert mode(aside[0]) == 0o600


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
        store.save(finished(ledger))
        ledger.begin_run("apply")
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
    assert restored.serial == 2 and restored.runs[-1].result == "succeeded"
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
    ledger = saved(saved(finished(make_ledger())))
    store.path.unlink()
    with pytest.raises(LedgerCorrupt, match="missing but its backup exists"):
        store.load()
    assert store.restore_backup().resources == ledger.resources


def test_restore_refuses_to_replace_an_intact_ledger_unless_forced(
    store: LocalStore, saved: Save, make_ledger: Make
) -> None:
    ledger = saved(saved(finished(make_ledger())))
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


# --- the journal: a save of a few records appends them, and group commit ----------------------


def _staged_save(store: LocalStore, ledger: Ledger, *steps: str) -> None:
    store.stage(ledger, steps).wait()


def test_a_save_of_a_few_records_appends_them_to_the_journal(
    store: LocalStore, make_ledger: Make
) -> None:
    ledger = make_ledger(50)
    with store.lock(command="apply"):
        store.save(ledger)
        whole = store.path.read_bytes()
        ledger.resources["subnet-0"].status = "present"
        ledger.runs[-1].events.append({"type": "step_finished", "step": "subnet-0"})
        _staged_save(store, ledger, "subnet-0")
        del ledger.resources["subnet-1"]
        _staged_save(store, ledger, "subnet-1")
        assert store.path.read_bytes() == whole  # not rewritten
        lines = store.journal_path.read_bytes().splitlines()
        assert len(lines) == 2 and all(len(line) < len(whole) / 10 for line in lines)
        assert mode(store.journal_path) == 0o600
    assert ledger.serial == 3
    assert LocalStore(store.path).load() == ledger  # another reader replays the journal


def test_the_journal_is_folded_into_the_file_once_it_outgrows_it(
    store: LocalStore, make_ledger: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("orchestrator.ledger.local.JOURNAL_MIN_BYTES", 0)
    ledger = make_ledger(5)
    with store.lock(command="apply"):
        store.save(ledger)
        first = store.path.read_bytes()
        for _ in range(5):
            ledger.resources["subnet-0"].spec["note"] = "x" * len(first)
            _staged_save(store, ledger, "subnet-0")
        assert store.path.read_bytes() != first
        # One line at most follows the file: the next save folds it in.
        journal = store.journal_path.read_bytes() if store.journal_path.exists() else b""
        assert journal.count(b"\n") <= 1
    assert LocalStore(store.path).load() == ledger


def test_each_lock_starts_with_the_whole_ledger(store: LocalStore, make_ledger: Make) -> None:
    ledger = make_ledger()
    with store.lock(command="apply"):
        store.save(ledger)
        _staged_save(store, ledger, "subnet-0")
        assert store.journal_path.exists()
    with store.lock(command="apply"):
        ledger = store.load()
        ledger.resources["subnet-0"].status = "present"
        _staged_save(store, ledger, "subnet-0")
        # The journal this holder appends to is one it began, after the whole ledger.
        assert not store.journal_path.exists()
    assert store.load() == ledger


def test_saves_staged_while_a_write_is_on_disk_share_the_next_write(
    store: LocalStore, make_ledger: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.ledger import files

    steps = [f"subnet-{i}" for i in range(8)]
    ledger = make_ledger(len(steps))
    writes: list[int] = []  # journal lines per write
    writing, others_staged = threading.Event(), threading.Event()
    append = files.append

    def held_append(fd: int, data: bytes) -> None:
        writes.append(data.count(b"\n"))
        if len(writes) == 1:
            writing.set()
            # The first write stays on disk until every other save is staged.
            assert others_staged.wait(10)
        append(fd, data)

    engine_lock = threading.Lock()  # what a caller holds while it changes the ledger
    staged: list[str] = []

    def save(step: str) -> None:
        with engine_lock:
            ledger.resources[step].status = "present"
            pending = store.stage(ledger, [step])
            staged.append(step)
            if len(staged) == len(steps):
                others_staged.set()
        pending.wait()

    with store.lock(command="apply"):
        store.save(ledger)
        monkeypatch.setattr(files, "append", held_append)
        first = threading.Thread(target=save, args=(steps[0],))
        first.start()
        assert writing.wait(10)
        rest = [threading.Thread(target=save, args=(step,)) for step in steps[1:]]
        for thread in rest:
            thread.start()
        for thread in (first, *rest):
            thread.join()
    assert writes == [1, len(steps) - 1]
    assert LocalStore(store.path).load() == ledger
    assert {r.status for r in ledger.resources.values()} == {"present"}


def test_a_line_cut_short_by_a_crash_is_not_part_of_the_ledger(
    store: LocalStore, make_ledger: Make
) -> None:
    ledger = make_ledger()
    with store.lock(command="apply"):
        store.save(ledger)
        ledger.resources["subnet-0"].status = "present"
        _staged_save(store, ledger, "subnet-0")
    with store.journal_path.open("ab") as journal:
        journal.write(b'{"checksum":"sha256:01')
    assert store.load() == ledger


def test_journal_lines_the_file_already_holds_are_skipped(
    store: LocalStore, make_ledger: Make
) -> None:
    ledger = make_ledger()
    with store.lock(command="apply"):
        store.save(ledger)
        ledger.resources["subnet-0"].status = "present"
        _staged_save(store, ledger, "subnet-0")
        journal = store.journal_path.read_bytes()
        store.save(ledger)
    # A crash between writing the file and removing the journal it folded in.
    store.journal_path.write_bytes(journal)
    assert store.load() == ledger


def test_a_damaged_journal_line_is_detected_and_restore_keeps_what_came_before_it(
    store: LocalStore, make_ledger: Make
) -> None:
    ledger = make_ledger()
    with store.lock(command="apply"):
        store.save(ledger)
        ledger.resources["subnet-0"].status = "present"
        _staged_save(store, ledger, "subnet-0")
        before = store.load()
        ledger.resources["subnet-1"].status = "deleting"
        _staged_save(store, ledger, "subnet-1")
    text = store.journal_path.read_text().replace('"status":"deleting"', '"status":"failed"', 1)
    store.journal_path.write_text(text)
    with pytest.raises(LedgerCorrupt) as caught:
        store.load()
    message = str(caught.value)
    assert f"line 2 of its journal {store.journal_path}" in message
    assert "checksum does not match" in message and "provision ledger restore" in message

    shown: list[tuple[Ledger, str]] = []
    assert store.restore_backup(confirm=lambda *seen: bool(shown.append(seen))) is None
    assert shown[0][0].resources == before.resources and "line 2" in shown[0][1]
    restored = store.restore_backup()
    assert restored.resources == before.resources and restored.serial == before.serial + 1
    assert store.load() == restored
    kept = [p for p in store.path.parent.iterdir() if ".journal.replaced-" in p.name]
    assert [p.read_text() for p in kept] == [text]


def test_a_failed_write_is_reported_and_the_next_save_writes_the_whole_ledger(
    store: LocalStore, make_ledger: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.ledger import files

    ledger = make_ledger()
    append = files.append

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    with store.lock(command="apply"):
        store.save(ledger)
        monkeypatch.setattr(files, "append", disk_full)
        ledger.resources["subnet-0"].status = "present"
        with pytest.raises(OSError, match="No space"):
            _staged_save(store, ledger, "subnet-0")
        monkeypatch.setattr(files, "append", append)
        ledger.resources["subnet-1"].status = "failed"
        _staged_save(store, ledger, "subnet-1")
        assert not store.journal_path.exists()  # the whole ledger, not a line after a gap
    assert store.load() == ledger


def test_a_ledger_left_with_a_journal_migrates_whole(
    store: LocalStore, make_ledger: Make, tmp_path: Path
) -> None:
    from orchestrator.ledger import migrate

    ledger = make_ledger()
    with store.lock(command="apply"):
        store.save(ledger)
        ledger.resources["subnet-0"].status = "present"
        _staged_save(store, ledger, "subnet-0")
    assert store.journal_path.exists()  # as a killed run leaves it
    target = LocalStore(tmp_path / "elsewhere" / "plan.ledger.json")
    moved, aside = migrate(store, target)
    assert moved == ledger and target.load() == ledger
    assert LocalStore(aside).load().resources == ledger.resources
    assert not store.journal_path.exists()


def test_a_symlinked_ledger_is_written_and_locked_where_it_points(
    tmp_path: Path, make_ledger: Make
) -> None:
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "plan.ledger.json"
    links = [tmp_path / "a.json", tmp_path / "b.json"]
    for link in links:
        link.symlink_to(target)
    first = LocalStore(links[0])
    ledger = make_ledger()
    with first.lock(command="apply"):
        first.save(ledger)
        with pytest.raises(LockHeld), LocalStore(links[1]).lock(command="apply"):
            pass
    assert all(link.is_symlink() for link in links)
    assert LocalStore(target).load() == ledger
    assert (tmp_path / "shared" / "plan.ledger.json.lock").exists()
