"""A ledger in Cloud Storage shared by real `provision` processes: they take turns under its lock,
lose no write, take over the lock of one killed with -9 once its lease expires and resume its
work, and the ledger moves between a file and the bucket with `ledger migrate`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

import orchestrator
from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.clock import LocalBackend, SimulatedClock
from orchestrator.ledger import Ledger, LocalStore, gcslock, open_store
from provision_emulator import Emulator

from ..engine.conftest import BASICS

BUCKET = "team-ledgers"
LOCATION = f"gs://{BUCKET}/envs/basics.json"
HOLDER = Path(__file__).resolve().parents[1] / "ledger" / "gcs_holder.py"
REPO = Path(__file__).resolve().parents[2]
PROCESSES = 8
# Service accounts: light to apply, so the test measures the lock rather than the kinds.
TEAM = """
name: team
vars:
  project: team-project
defaults:
  project: ${vars.project}
steps:
  - id: deployer
    kind: iam.service_account
    name: deployer
    properties: {displayName: Deployer}
  - id: auditor
    kind: iam.service_account
    name: auditor
    properties: {displayName: Auditor}
  - id: caller
    kind: iam.service_account
    name: proxy-caller
    properties: {displayName: Proxy caller}
"""
CREATE = "iam.projects.serviceAccounts.create"


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", **extra}


def provision_cmd(emulator: Emulator, *args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args, f"--emulator={emulator.url}"]


def provision(emulator: Emulator, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(provision_cmd(emulator, *args), cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=180)


def make_bucket(emulator: Emulator) -> storage.Bucket:
    admin = storage.Client(project="ledger-project", credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": f"{emulator.url}/storage"})
    return admin.create_bucket(BUCKET)


def remote(emulator: Emulator, location: str = LOCATION) -> Ledger:
    clients = ClientFactory(credentials=AnonymousCredentials(), emulator_url=emulator.url)
    return open_store(location, storage=clients.storage).load()


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_concurrent_applies_take_turns_and_lose_no_write(
    emulator: Emulator, tmp_path: Path
) -> None:
    make_bucket(emulator)
    plan = tmp_path / "plan.yaml"
    plan.write_text(TEAM)

    # How many writes the same applies make one after another, in another project and ledger.
    alone = f"gs://{BUCKET}/alone.json"
    with orchestrator.load(plan, vars={"project": "alone-project"}, ledger=alone,
                           emulator=emulator) as dep:
        for _ in range(PROCESSES):
            assert dep.apply().ok
        writes = dep.ledger().serial
    creates = emulator.request_counts()[CREATE]

    runs = [
        subprocess.Popen(
            provision_cmd(emulator, "apply", str(plan), "--ledger", LOCATION, "--json",
                          "--lock-timeout", "150"),
            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(PROCESSES)
    ]
    outcomes = [run.communicate(timeout=240) for run in runs]
    for run, (out, err) in zip(runs, outcomes, strict=True):
        assert run.returncode == 0, out + err

    ledger = remote(emulator)
    assert [r.id for r in ledger.runs] == list(range(1, PROCESSES + 1))
    assert all(r.result == "succeeded" for r in ledger.runs)
    # Exactly one run at a time: each started after the one before it finished.
    for before, after in zip(ledger.runs, ledger.runs[1:], strict=False):
        assert before.finished is not None and before.finished <= after.started
    # Each process made exactly one of those runs...
    started = sorted(e["data"]["run"] for out, _ in outcomes
                     for e in events(out) if e["type"] == "run_started")
    assert started == list(range(1, PROCESSES + 1))
    # ...one created the resources, once; the others found nothing to do...
    creators = [r for r in ledger.runs if r.actions]
    assert len(creators) == 1 and {a.action for a in creators[0].actions} == {"create"}
    assert emulator.request_counts()[CREATE] == 2 * creates
    # ...and every write of every run is there: none was lost to another's.
    assert ledger.serial == writes
    assert {r.status for r in ledger.resources.values()} == {"present"}


def test_killed_holder_is_taken_over_after_its_lease_and_its_run_resumed(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    # The network's operation lasts 2,000 simulated seconds (the step allows it 2 h), so the
    # holder is killed while it waits on it.
    plan.write_text(BASICS.replace("    name: eng-vpc\n", "    name: eng-vpc\n    timeout: 2h\n"))
    with Emulator(durations={"compute.networks": 2000.0}) as emu:
        make_bucket(emu)
        args = ("apply", str(plan), "--ledger", LOCATION, "--json")
        holder = subprocess.Popen(
            provision_cmd(emu, *args), cwd=tmp_path, env=env(PROVISION_LOCK_LEASE="1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert holder.stdout is not None
        for line in holder.stdout:  # polling the network's operation: its name is recorded
            event = json.loads(line)
            if event["type"] == "step_progress" and event["step"] == "vpc":
                break
        holder.send_signal(signal.SIGKILL)
        holder.wait()

        killed = remote(emu)
        assert killed.runs[-1].result == "running"
        vpc = killed.resources["vpc"]
        assert vpc.status == "in_flight" and vpc.operation and vpc.operation.name
        clients = ClientFactory(credentials=AnonymousCredentials(), emulator_url=emu.url)
        lock = gcslock.read(lambda: clients.storage().bucket(BUCKET).blob("envs/basics.json.lock"))
        clock = SimulatedClock(LocalBackend(emu.clock))
        assert lock is not None and lock.info.pid == holder.pid and not lock.expired(clock)

        # The dead holder's lock declares its own 1 s lease; this run keeps the default one.
        resumed = subprocess.run(
            provision_cmd(emu, *args, "--lock-timeout", "60"), cwd=tmp_path,
            env=env(), capture_output=True, text=True, timeout=180,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert {"step": "vpc", "message": "resuming recorded operation"}.items() <= next(
            e for e in events(resumed.stdout) if e.get("message") == "resuming recorded operation"
        ).items()
        ledger = remote(emu)
        assert [r.result for r in ledger.runs] == ["interrupted", "succeeded"]
        assert {r.status for r in ledger.resources.values()} == {"present"}
        assert emu.request_counts()["compute.networks.insert"] == 1  # not created again


def test_a_dead_holders_lock_is_named_and_unlocked_by_its_id(
    emulator: Emulator, tmp_path: Path
) -> None:
    make_bucket(emulator)
    plan = tmp_path / "plan.yaml"
    plan.write_text(TEAM)
    holder = subprocess.Popen(
        [sys.executable, str(HOLDER), emulator.url, LOCATION, "600"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout is not None
    lock_id = json.loads(holder.stdout.readline())["id"]
    holder.send_signal(signal.SIGKILL)
    holder.wait()

    refused = provision(emulator, tmp_path, "apply", str(plan), "--ledger", LOCATION, "--yes")
    assert refused.returncode == 2
    assert f"pid {holder.pid}" in refused.stderr and f"provision unlock {lock_id}" in refused.stderr
    wrong = provision(emulator, tmp_path, "unlock", "12345", "--ledger", LOCATION)
    assert wrong.returncode == 2 and "is not the lock" in wrong.stderr
    unlocked = provision(emulator, tmp_path, "unlock", lock_id, "--ledger", LOCATION)
    assert unlocked.returncode == 0 and f"pid {holder.pid}" in unlocked.stdout
    applied = provision(emulator, tmp_path, "apply", str(plan), "--ledger", LOCATION, "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr


def test_migrate_a_file_to_the_bucket_and_back(emulator: Emulator, tmp_path: Path) -> None:
    bucket = make_bucket(emulator)
    plan = tmp_path / "plan.yaml"
    plan.write_text(TEAM)
    local = tmp_path / ".provision" / "team.ledger.json"
    assert provision(emulator, tmp_path, "apply", str(plan), "--yes").returncode == 0
    before = json.loads(local.read_bytes())
    # Made by the first secret a plan fingerprints; this plan has none.
    key = LocalStore(local).fingerprint_key().hex().encode() + b"\n"

    up = provision(emulator, tmp_path, "ledger", "migrate", "--to", LOCATION, str(plan))
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"moved to {LOCATION}" in up.stdout and f"--ledger {LOCATION}" in up.stdout
    assert not local.exists() and local.with_name("team.ledger.json.migrated").exists()
    assert json.loads(bucket.blob("envs/basics.json").download_as_bytes()) == before
    assert bucket.blob("envs/basics.json.key").download_as_bytes() == key

    shown = provision(emulator, tmp_path, "show", "--ledger", LOCATION)
    assert shown.returncode == 0 and f"serial {before['serial']}" in shown.stdout
    again = provision(emulator, tmp_path, "plan", str(plan), "--ledger", LOCATION,
                      "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr  # nothing to do from the bucket

    back = tmp_path / "back.json"
    down = provision(emulator, tmp_path, "ledger", "migrate", "--to", str(back),
                     "--ledger", LOCATION)
    assert down.returncode == 0, down.stdout + down.stderr
    assert json.loads(back.read_bytes()) == before
    assert back.with_name("back.json.key").read_bytes() == key
    assert bucket.get_blob("envs/basics.json") is None

    onto = provision(emulator, tmp_path, "ledger", "migrate", "--to", str(back),
                     "--ledger", f"{LOCATION}.migrated")
    assert onto.returncode == 2 and "refuses to overwrite" in onto.stderr
