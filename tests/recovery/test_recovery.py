"""Rollback, drift, import, refresh and ledger integrity, through the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from orchestrator.ledger import LocalStore
from provision_emulator import Emulator

from ..engine.conftest import BASICS

PROJECT = "eng-project"
# A second apply that changes the firewall, adds a network, and fails on an overlapping subnet.
FAILING = BASICS.replace('sources: 10.10.0.0/24', 'sources: 10.99.0.0/16') + """
  - id: extra
    kind: compute.network
    name: eng-extra
    properties: {autoCreateSubnetworks: false}
  - id: overlap
    kind: compute.subnetwork
    name: eng-overlap
    properties:
      network: ${vpc.selfLink}
      ipCidrRange: 10.10.0.0/25
    depends_on: [subnet, extra, fw]
"""


def provision(emulator: Emulator, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, f"--emulator={emulator.url}"],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env=dict(os.environ),
    )


def applied(emulator: Emulator, cwd: Path, text: str = BASICS) -> Path:
    """A plan written in `cwd` and applied through the CLI; its path."""
    plan = cwd / "plan.yaml"
    plan.write_text(text)
    done = provision(emulator, cwd, "apply", str(plan), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    return plan


def compute(emulator: Emulator, cls: type) -> object:
    return cls(credentials=AnonymousCredentials(),
               client_options=ClientOptions(api_endpoint=f"{emulator.url}/compute"))


def _networks(emulator: Emulator) -> set[str]:
    return {n.name for n in compute(emulator, compute_v1.NetworksClient).list(project=PROJECT)}


def _firewall_sources(emulator: Emulator) -> list[str]:
    fw = compute(emulator, compute_v1.FirewallsClient).get(
        project=PROJECT, firewall="eng-allow-internal")
    return list(fw.source_ranges)


def test_apply_on_failure_rollback_undoes_only_that_apply(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = applied(emulator, tmp_path)
    plan.write_text(FAILING)
    failed = provision(emulator, tmp_path, "apply", str(plan), "--yes", "--on-failure",
                       "rollback")
    assert failed.returncode == 1
    assert "overlap" in failed.stdout and "rollback complete" in failed.stdout, failed.stdout
    assert _networks(emulator) == {"eng-vpc"}  # the new network is gone, the old one stays
    assert _firewall_sources(emulator) == ["10.10.0.0/24"]  # the update is undone
    ledger = LocalStore(tmp_path / ".provision" / "basics.ledger.json").load()
    assert set(ledger.resources) == {"vpc", "subnet", "fw"}
    assert [r.result for r in ledger.runs[-3:]] == ["succeeded", "rolled_back", "succeeded"]


def test_rollback_that_stops_halfway_can_be_run_again(emulator: Emulator, tmp_path: Path) -> None:
    plan = applied(emulator, tmp_path, BASICS.replace("name: basics", "name: halfway"))
    emulator.set_faults(unavailable=1.0, methods=["compute.firewalls.delete"])
    first = provision(emulator, tmp_path, "rollback", str(plan))
    assert first.returncode == 1, first.stdout + first.stderr
    ledger = LocalStore(tmp_path / ".provision" / "halfway.ledger.json").load()
    assert set(ledger.resources) == {"vpc", "fw"}  # subnet undone; fw and what it needs stay
    emulator.set_faults(unavailable=0.0, methods=[])
    again = provision(emulator, tmp_path, "rollback", str(plan))
    assert again.returncode == 0, again.stdout + again.stderr
    assert _networks(emulator) == set()
    assert LocalStore(tmp_path / ".provision" / "halfway.ledger.json").load().resources == {}


def test_plan_reports_drift_and_apply_repairs_it(emulator: Emulator, tmp_path: Path) -> None:
    plan = applied(emulator, tmp_path)
    firewalls = compute(emulator, compute_v1.FirewallsClient)
    op = firewalls.patch_unary(project=PROJECT, firewall="eng-allow-internal",
                               firewall_resource=compute_v1.Firewall(source_ranges=["0.0.0.0/0"]))
    compute(emulator, compute_v1.GlobalOperationsClient).wait(project=PROJECT, operation=op.name)
    subnets = compute(emulator, compute_v1.SubnetworksClient)
    op = subnets.delete_unary(project=PROJECT, region="europe-west1", subnetwork="eng-subnet")
    compute(emulator, compute_v1.RegionOperationsClient).wait(
        project=PROJECT, region="europe-west1", operation=op.name)

    shown = provision(emulator, tmp_path, "plan", str(plan), "--detailed-exitcode")
    assert shown.returncode == 3, shown.stdout
    assert "~ fw" in shown.stdout and "sourceRanges" in shown.stdout
    assert "0.0.0.0/0" in shown.stdout
    assert "+ subnet" in shown.stdout and "deleted outside provision" in shown.stdout
    assert "~ vpc" not in shown.stdout  # server defaults are not drift

    assert provision(emulator, tmp_path, "apply", str(plan), "--yes").returncode == 0
    assert _firewall_sources(emulator) == ["10.10.0.0/24"]
    assert provision(emulator, tmp_path, "plan", str(plan), "--detailed-exitcode").returncode == 0


def test_import_puts_an_existing_resource_under_the_ledger(
    emulator: Emulator, tmp_path: Path
) -> None:
    networks = compute(emulator, compute_v1.NetworksClient)
    op = networks.insert_unary(project=PROJECT, network_resource=compute_v1.Network(
        name="eng-vpc", auto_create_subnetworks=False, routing_config={"routing_mode": "GLOBAL"}))
    compute(emulator, compute_v1.GlobalOperationsClient).wait(project=PROJECT, operation=op.name)
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    refused = provision(emulator, tmp_path, "apply", str(plan), "--yes")
    assert refused.returncode == 1
    assert f"provision import {plan} vpc projects/{PROJECT}/global/networks/eng-vpc" in (
        refused.stdout)
    # A step the plan lacks, or a path that is not the step's, is wrong input: exit 2.
    misnamed = provision(emulator, tmp_path, "import", str(plan), "vpcc")
    assert misnamed.returncode == 2
    assert "the plan has no step 'vpcc' (did you mean vpc?)" in misnamed.stderr
    elsewhere = provision(emulator, tmp_path, "import", str(plan), "vpc",
                          f"projects/{PROJECT}/global/networks/other-vpc")
    assert elsewhere.returncode == 2
    assert f"describes projects/{PROJECT}/global/networks/eng-vpc, not" in elsewhere.stderr
    imported = provision(emulator, tmp_path, "import", str(plan), "vpc",
                         f"projects/{PROJECT}/global/networks/eng-vpc")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    applied = provision(emulator, tmp_path, "apply", str(plan), "--yes")
    assert applied.returncode == 0, applied.stdout
    ledger = LocalStore(tmp_path / ".provision" / "basics.ledger.json").load()
    assert ledger.resources["vpc"].origin == "imported"
    assert ledger.resources["subnet"].origin == "created"


def test_refresh_updates_outputs_from_live_state(emulator: Emulator, tmp_path: Path) -> None:
    plan = applied(emulator, tmp_path)
    firewalls = compute(emulator, compute_v1.FirewallsClient)
    op = firewalls.patch_unary(project=PROJECT, firewall="eng-allow-internal",
                               firewall_resource=compute_v1.Firewall(priority=900))
    compute(emulator, compute_v1.GlobalOperationsClient).wait(project=PROJECT, operation=op.name)
    assert provision(emulator, tmp_path, "refresh", str(plan)).returncode == 0
    ledger = LocalStore(tmp_path / ".provision" / "basics.ledger.json").load()
    assert ledger.resources["fw"].outputs["priority"] == 900


def test_corrupt_ledger_stops_before_any_request_and_is_restored(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = applied(emulator, tmp_path)
    plan.write_text(BASICS.replace("sources: 10.10.0.0/24", "sources: 10.11.0.0/24"))
    assert provision(emulator, tmp_path, "apply", str(plan), "--yes").returncode == 0
    path = tmp_path / ".provision" / "basics.ledger.json"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    before = len(emulator.requests())
    broken = provision(emulator, tmp_path, "apply", str(plan), "--yes")
    assert broken.returncode == 2
    assert "ledger restore" in broken.stderr and "Traceback" not in broken.stderr
    assert len(emulator.requests()) == before
    restored = subprocess.run(
        [sys.executable, "-m", "orchestrator", "ledger", "restore", str(plan)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert set(LocalStore(path).load().resources) == {"vpc", "subnet", "fw"}


def test_a_ledger_damaged_after_one_clean_apply_is_restored_to_what_that_apply_made(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = applied(emulator, tmp_path)
    path = tmp_path / ".provision" / "basics.ledger.json"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit, as a bad disk or a bad copy makes
    path.write_bytes(bytes(data))
    restored = provision(emulator, tmp_path, "ledger", "restore", str(plan), "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # What it puts back is shown before it is put back.
    assert "3 resources" in restored.stdout and "apply succeeded" in restored.stdout
    destroyed = provision(emulator, tmp_path, "destroy", str(plan), "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert _networks(emulator) == set()


def test_a_lock_left_by_a_dead_run_is_reported_with_its_holder(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    ledger = tmp_path / ".provision" / "basics.ledger.json"
    ledger.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, str(Path(__file__).parents[1] / "ledger" / "lock_holder.py"), "hold",
         str(ledger)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None
    assert '"pid"' in holder.stdout.readline()  # it holds the lock now
    holder.kill()
    holder.wait()
    applied = provision(emulator, tmp_path, "apply", str(plan), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "took over the ledger lock left by a run that is gone" in applied.stdout
    assert f"pid {holder.pid}" in applied.stdout
