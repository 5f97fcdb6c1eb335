"""The Cloud Storage ledger store, through google-cloud-storage against the emulator: the same
bytes as a local ledger, writes conditional on the generation read, a lock whose id is its
generation and whose lease is renewed, taken over once it expires, and never lost to the race of
terraform#30149; migration between a file and a bucket."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

import orchestrator
from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.clock import LocalBackend, SimulatedClock
from orchestrator.ledger import (
    Ledger,
    LedgerConflict,
    LedgerCorrupt,
    LedgerError,
    LocalStore,
    LockHeld,
    LockInfo,
    gcslock,
    migrate,
    open_store,
)
from orchestrator.ledger.codec import encode
from orchestrator.ledger.gcs import GcsStore
from provision_emulator import Emulator

from ..engine.conftest import BASICS
from .conftest import sample_ledger

BUCKET = "team-ledgers"
NAME = "envs/prod/net.ledger.json"
LOCATION = f"gs://{BUCKET}/{NAME}"
HOLDER = Path(__file__).with_name("gcs_holder.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock(emulator: Emulator) -> SimulatedClock:
    """The emulator's virtual clock, as an engine sees it: leases are simulated time, and a
    test moves through one by sleeping on the clock while the lease renewer works."""
    return SimulatedClock(LocalBackend(emulator.clock))


@pytest.fixture
def clients(emulator: Emulator) -> ClientFactory:
    return ClientFactory(credentials=AnonymousCredentials(), emulator_url=emulator.url)


@pytest.fixture
def bucket(emulator: Emulator) -> storage.Bucket:
    admin = storage.Client(
        project="ledger-project",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"{emulator.url}/storage"},
    )
    return admin.create_bucket(BUCKET)


@pytest.fixture
def make_store(
    clients: ClientFactory, bucket: storage.Bucket, clock: SimulatedClock
) -> Callable[..., GcsStore]:
    def make(location: str = LOCATION, **options: float) -> GcsStore:
        store = open_store(location, storage=clients.storage, clock=clock, **options)
        assert isinstance(store, GcsStore)
        return store

    return make


def lock_object(bucket: storage.Bucket) -> storage.Blob:
    blob = bucket.get_blob(f"{NAME}.lock")
    assert blob is not None
    return blob


# --- the ledger object ------------------------------------------------------------------------


def test_bytes_are_the_local_ledgers(make_store, bucket, tmp_path: Path) -> None:
    ledger = sample_ledger()
    remote, local = make_store(), LocalStore(tmp_path / "net.ledger.json")
    for store, copy_ in ((remote, ledger), (local, copy.deepcopy(ledger))):
        with store.lock("apply"):
            store.load()
            store.save(copy_)
    assert bucket.blob(NAME).download_as_bytes() == local.path.read_bytes()
    assert remote.load() == local.load() and remote.load().serial == 1


def test_first_write_needs_the_object_still_missing(make_store, bucket) -> None:
    store = make_store()
    with store.lock("apply"):
        ledger = store.load()
        # Another writer, one that ignores the lock, creates the ledger meanwhile.
        theirs = encode(sample_ledger(), 1)
        other = bucket.blob(NAME)
        other.upload_from_string(theirs)
        with pytest.raises(LedgerConflict) as refused:
            store.save(ledger)
    message = str(refused.value)
    assert f"generation {other.generation} now" in message and "read generation 0" in message
    assert "nothing was overwritten" in message
    assert bucket.blob(NAME).download_as_bytes() == theirs


def test_stale_generation_write_is_refused_and_reported(make_store, bucket) -> None:
    store = make_store()
    with store.lock("apply"):
        ledger = store.load()
        store.save(ledger)
        read = bucket.get_blob(NAME).generation
        intruder = encode(sample_ledger(), 7)
        bucket.blob(NAME).upload_from_string(intruder)
        newer = bucket.get_blob(NAME).generation
        with pytest.raises(LedgerConflict) as refused:
            store.save(ledger)
    assert f"it is at generation {newer} now" in str(refused.value)
    assert f"this run read generation {read} (serial 1)" in str(refused.value)
    assert bucket.blob(NAME).download_as_bytes() == intruder  # not overwritten
    assert ledger.serial == 1


def test_a_run_whose_ledger_changes_under_it_stops_and_says_so(emulator, bucket, tmp_path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    intruder: list[int] = []

    def meddle(event: object) -> None:
        # While the network's operation is polled (its name recorded), someone rewrites the
        # ledger object behind the run's back.
        if getattr(event, "type", "") == "step_progress" and not intruder:
            blob = bucket.blob(NAME)
            blob.upload_from_string(encode(sample_ledger(), 40))
            intruder.append(blob.generation)

    dep = orchestrator.load(plan, emulator=emulator, ledger=LOCATION,
                            parallelism=1, on_event=meddle)
    with dep, pytest.raises(LedgerConflict) as refused:
        dep.apply()
    assert f"it is at generation {intruder[0]} now" in str(refused.value)
    assert json.loads(bucket.blob(NAME).download_as_bytes())["serial"] == 40  # kept
    assert bucket.get_blob(f"{NAME}.lock") is None  # the lock was released


def test_a_copy_loaded_before_another_write_is_refused(make_store) -> None:
    store = make_store()
    with store.lock("apply"):
        stale = store.load()
        fresh = copy.deepcopy(stale)
        store.save(fresh)
        with pytest.raises(LedgerConflict, match="loaded at serial 0"):
            store.save(stale)


def test_saves_staged_while_a_write_is_under_way_share_the_next_write(
    emulator, make_store, bucket
) -> None:
    store = make_store()
    steps = [f"subnet-{i}" for i in range(8)]
    ledger = sample_ledger(len(steps))
    uploading, all_staged = threading.Event(), threading.Event()
    uploads: list[str] = []

    def hold_first_upload(entry: dict) -> None:
        if entry["method"] == "storage.objects.insert":
            uploads.append(entry["path"])
            if not uploading.is_set():
                uploading.set()
                # The first write is on its way until every other save is staged.
                all_staged.wait(10)

    engine_lock = threading.Lock()
    staged: list[str] = []

    def save(step: str) -> None:
        with engine_lock:
            ledger.resources[step].status = "present"
            pending = store.stage(ledger, [step])
            staged.append(step)
            if len(staged) == len(steps):
                all_staged.set()
        pending.wait()

    with store.lock("apply"):
        store.load()
        store.save(ledger)
        emulator.add_request_listener(hold_first_upload)
        try:
            first = threading.Thread(target=save, args=(steps[0],))
            first.start()
            assert uploading.wait(10)
            rest = [threading.Thread(target=save, args=(step,)) for step in steps[1:]]
            for thread in rest:
                thread.start()
            for thread in (first, *rest):
                thread.join()
        finally:
            emulator.remove_request_listener(hold_first_upload)
    # Two writes for eight saves (and no backup: no run has finished).
    assert len(uploads) == 2
    assert store.load() == ledger and ledger.serial == 1 + len(steps)


def test_backup_is_the_last_finished_run_and_restores(make_store, bucket) -> None:
    store = make_store()
    with store.lock("apply"):
        ledger = store.load()
        ledger.begin_run("apply").finish("succeeded")
        store.save(ledger)
        ledger.begin_run("destroy")
        ledger.plan = "second"
        store.save(ledger)
    assert json.loads(bucket.blob(f"{NAME}.bak").download_as_bytes())["serial"] == 1
    with pytest.raises(LedgerError, match="is intact"):
        store.restore_backup()
    bucket.blob(NAME).upload_from_string(b'{"serial": 3, "edited": "by hand"}')
    with pytest.raises(LedgerCorrupt) as corrupt:
        store.load()
    assert f"{LOCATION}.bak" in str(corrupt.value)
    restored = store.restore_backup()
    assert restored.serial == 2 and store.load().serial == 2 and store.load().plan == ""
    kept = [b.name for b in bucket.list_blobs(prefix=f"{NAME}.replaced-")]
    assert len(kept) == 1 and b"by hand" in bucket.blob(kept[0]).download_as_bytes()


def test_missing_ledger_with_a_backup_is_corrupt_not_new(make_store, bucket) -> None:
    store = make_store()
    with store.lock("apply"):
        ledger = store.load()
        ledger.begin_run("apply").finish("succeeded")
        store.save(ledger)
        store.save(ledger)
    bucket.blob(NAME).delete()
    with pytest.raises(LedgerCorrupt, match="missing but its backup exists"):
        store.load()


def test_fingerprint_key_is_made_once_beside_the_ledger(make_store, bucket) -> None:
    first, second = make_store(), make_store()
    key = first.fingerprint_key()
    assert second.fingerprint_key() == key and len(key) == 32
    assert bucket.blob(f"{NAME}.key").download_as_bytes().strip() == key.hex().encode()
    assert first.stored_fingerprint_key() == key


# --- the lock -----------------------------------------------------------------------------------


def test_second_holder_is_refused_with_who_holds_it(make_store, bucket) -> None:
    with make_store().lock("apply") as lock:
        assert lock.id == str(lock_object(bucket).generation)
        with pytest.raises(LockHeld) as refused, make_store().lock("plan"):
            pass
    assert refused.value.holder == lock.info
    for part in (lock.id, str(os.getpid()), lock.info.host, "`apply`", "its lease runs until",
                 f"provision unlock {lock.id}"):
        assert part in str(refused.value)
    assert bucket.get_blob(f"{NAME}.lock") is None  # released


def test_renewals_keep_the_lock_and_its_id(make_store, bucket, clock) -> None:
    store = make_store(lease=1.0)
    with clock.busy(), store.lock("apply") as lock:
        # Three renewals, a third of a lease apart: a whole lease has passed since the lock
        # was taken, and it is still this run's.
        clock.sleep(1.0)
        assert lock_object(bucket).metageneration == 4
        assert lock_object(bucket).generation == int(lock.id)
        with pytest.raises(LockHeld), make_store().lock("plan"):
            pass
        ledger = store.load()
        store.save(ledger)


def test_lock_released_between_a_failed_create_and_the_read_is_free(
    clients, bucket, clock
) -> None:
    """terraform#30149: the holder deletes its lock just after another's create failed and
    before that one reads who holds it. Terraform reports "object doesn't exist" and gives up;
    here the lock is free, and taken."""
    blob = lambda: clients.storage().bucket(BUCKET).blob(f"{NAME}.lock")  # noqa: E731
    holder = gcslock.acquire(blob, LOCATION, "apply", lease=60, clock=clock)
    calls = 0
    acquiring = threading.current_thread()

    def interleaved() -> storage.Blob:
        nonlocal calls
        if threading.current_thread() is not acquiring:  # the lease renewer's, once taken
            return blob()
        calls += 1
        if calls == 2:  # the read of the holder, right after the failed create
            holder.release()
        return blob()

    taken = gcslock.acquire(interleaved, LOCATION, "plan", lease=60, clock=clock)
    try:
        assert calls == 3  # create (refused), read (gone), create again
        assert int(taken.lock.id) > int(holder.lock.id)
        assert lock_object(bucket).generation == int(taken.lock.id)
    finally:
        taken.release()


def test_killed_holder_is_taken_over_once_its_lease_expires(
    emulator, make_store, bucket, clock
) -> None:
    process = subprocess.Popen(
        [sys.executable, str(HOLDER), emulator.url, LOCATION, "1.0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    dead = LockInfo.from_dict(json.loads(process.stdout.readline()))
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Renewed a third of a lease ago at most: still its lock.
    with pytest.raises(LockHeld) as refused, make_store().lock("plan"):
        pass
    assert refused.value.holder == dead

    # Waiters race for the expired lock: one takes it over, atomically; each then runs alone.
    held: list[tuple[float, float, LockInfo | None]] = []

    def waiter() -> None:
        with clock.busy(), make_store(lock_timeout=30).lock("apply") as lock:
            entered = time.monotonic()
            ledger = make_store().load()
            assert ledger.serial >= 1  # the dead holder's write is there
            left = time.monotonic()
            held.append((entered, left, lock.stale_previous))

    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(held) == 4
    assert [stale for _, _, stale in held if stale is not None] == [dead]
    spans = sorted(held, key=lambda h: h[0])
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_force_unlock_needs_that_lock_id(make_store, bucket, clock) -> None:
    store = make_store(lease=1.0)
    with clock.busy(), store.lock("apply") as lock:
        ledger = store.load()
        with pytest.raises(LedgerError, match="is not a lock id"):
            make_store().force_unlock("a1b2c3")
        with pytest.raises(LedgerError, match=f"is not the lock of ledger.*lock {lock.id}"):
            make_store().force_unlock(str(int(lock.id) + 1))
        assert make_store().force_unlock(lock.id) == lock.info
        # The holder learns at its next renewal, a third of a lease later, and writes nothing
        # more.
        assert _refusal(store, ledger) == ""
        clock.sleep(0.4)
        assert "lost its lock" in _refusal(store, ledger)
        assert "it was removed, by `provision unlock`" in _refusal(store, ledger)
    with pytest.raises(LedgerError, match="is not locked"):
        make_store().force_unlock(lock.id)


def test_a_holder_that_cannot_renew_stops_writing(emulator, make_store, clock) -> None:
    store = make_store(lease=0.6)
    with clock.busy(), store.lock("apply"):
        ledger = store.load()
        emulator.set_faults(unavailable=1.0, methods=["storage.objects.patch"])
        clock.sleep(0.5)  # the lease, from the last renewal that got through, runs to 0.6
        assert _refusal(store, ledger) == ""
        clock.sleep(0.1)
        assert "could not renew the lease" in _refusal(store, ledger)
        emulator.set_faults(unavailable=0.0, methods=[])


def _refusal(store: GcsStore, ledger: Ledger) -> str:
    """Why `store` refuses to save `ledger` ("" if it saves it)."""
    try:
        store.save(ledger)
    except LedgerError as exc:
        return str(exc)
    return ""


# --- locations, settings, migration ------------------------------------------------------------


@pytest.mark.parametrize("location", ["gs://", "gs://bucket", "gs://bucket/", "gs://b/dir/"])
def test_location_must_name_an_object(clients, location: str) -> None:
    with pytest.raises(LedgerError, match="expected gs://BUCKET/PATH/NAME.json"):
        open_store(location, storage=clients.storage)


def test_missing_bucket_is_explained(clients) -> None:
    store = open_store("gs://no-such-bucket/net.json", storage=clients.storage)
    with pytest.raises(LedgerError, match="bucket no-such-bucket was not found"), store.lock("x"):
        pass


def test_plan_settings_and_api_choose_the_bucket(emulator, bucket, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    setting = f"name: basics\nsettings:\n  ledger: {LOCATION}\n"
    plan.write_text(BASICS.replace("name: basics\n", setting))
    with orchestrator.load(plan, emulator=emulator,
                           state_dir=tmp_path / ".provision") as dep:
        assert dep.ledger_location == LOCATION
        assert dep.apply().ok
        assert set(dep.outputs()) == {"vpc", "subnet", "fw"}
    assert not (tmp_path / ".provision" / "basics.ledger.json").exists()
    ledger = json.loads(bucket.blob(NAME).download_as_bytes())
    assert set(ledger["resources"]) == {"vpc", "subnet", "fw"}
    other = f"gs://{BUCKET}/elsewhere.json"
    with orchestrator.load(plan, emulator=emulator, ledger=other,
                           state_dir=tmp_path / ".provision") as dep:
        assert dep.ledger_location == other
        assert dep.ledger().serial == 0


def test_migrate_from_a_file_to_a_bucket_and_back(make_store, bucket, tmp_path: Path) -> None:
    local = LocalStore(tmp_path / "net.ledger.json")
    with local.lock("apply"):
        ledger = sample_ledger()
        local.save(ledger)
        local.save(ledger)
    key = local.fingerprint_key()
    remote = make_store()

    moved, kept = migrate(local, remote)
    assert moved.serial == 2 and remote.load() == local_copy(kept) == moved
    assert remote.stored_fingerprint_key() == key
    assert not local.path.exists() and local.stored_fingerprint_key() is None
    assert not local.backup_path.exists()

    back = LocalStore(tmp_path / "back" / "net.ledger.json")
    moved_back, kept_remote = migrate(remote, back)
    assert back.load() == moved_back == moved and back.fingerprint_key() == key
    assert kept_remote == f"{LOCATION}.migrated"
    assert bucket.get_blob(NAME) is None and bucket.get_blob(f"{NAME}.key") is None
    assert bucket.get_blob(f"{NAME}.migrated") is not None

    # A target that holds a ledger is never overwritten.
    again = make_store(f"gs://{BUCKET}/other.json")
    with again.lock("apply"):
        again.save(again.load())
    with pytest.raises(LedgerError, match="exists .*refuses to overwrite"):
        migrate(back, again)
    assert back.load() == moved  # the source is left as it was


def local_copy(path: str) -> object:
    from orchestrator.ledger.codec import decode

    return decode(Path(path).read_bytes(), path)


@pytest.fixture(autouse=True)
def _no_faults_left(emulator: Emulator) -> Iterator[None]:
    yield
    emulator.set_faults(unavailable=0.0, methods=[])
