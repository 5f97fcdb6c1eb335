"""Google's transient failures on the reference plans: throttling, unavailability, latency,
eventual consistency and late IAM bindings are absorbed; an operation that ends in error
stops only what depends on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator
from provision_emulator import Emulator

PLANS = Path(__file__).parents[2] / "plans"
# At 0.01 a millisecond of real client overhead is 0.1 simulated second, about a round trip
# to Google, so retries under faults spend deadlines as they would against Google. Apigee's
# operations are cut short: faults, not durations, are what this is about.
FAULTS = {
    "rate_limit": 0.1,  # 429 with Retry-After
    "unavailable": 0.1,  # 503
    "latency": 0.05,  # 50-150 ms of simulated network time on every request
    "latency_jitter": 0.1,
    "consistency_delay": 20.0,  # a new resource reads 404 for 20 simulated seconds
    "iam_delay": 30.0,  # a set IAM policy reads back as the old one for 30 s
}


@pytest.mark.parametrize(
    "plan",
    [
        "psc-cloud-run.yaml",
        "psc-cloud-run-multi-project.yaml",
        "vpn-hub.yaml",
        "shared-vpc-hub.yaml",
        "northbound-psc.yaml",
    ],
)
def test_reference_plan_applies_and_destroys_through_faults(plan: str, tmp_path: Path) -> None:
    with (
        Emulator(seed=7, faults=FAULTS) as emu,
        orchestrator.load(PLANS / plan, emulator=emu,
                          state_dir=tmp_path / ".provision") as dep,
    ):
        applied = dep.apply()
        assert applied.ok, [(f.step, f.message) for f in applied.failures]
        statuses = {r["status"] for r in emu.requests()}
        assert {429, 503} <= statuses  # the faults did happen
        again = dep.apply()
        assert again.ok and set(again.actions.values()) == {"noop"}, again.failures
        destroyed = dep.destroy()
        assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        assert dep.ledger().resources == {}


def test_operation_ending_in_error_stops_only_its_dependents(tmp_path: Path) -> None:
    plan = PLANS / "psc-cloud-run.yaml"
    with Emulator(seed=1,
                  faults={"operation_failure": 1.0,
                          "methods": [
                              "certificatemanager.projects.locations.certificates.create"]}
                  ) as emu:
        run = subprocess.run(
            [sys.executable, "-m", "orchestrator", "apply", str(plan), f"--emulator={emu.url}",
             "--yes"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env=dict(os.environ),
        )
    assert run.returncode == 1
    out = run.stdout
    # The report names the step, Google's error, and the command to run next.
    assert "x step cert (certificatemanager.certificate" in out
    assert "operation" in out and "failed" in out
    assert f"provision apply {plan} again" in out
    for dependent in ("https-proxy", "forwarding-rule", "service-attachment", "proxy"):
        assert f"step {dependent} not run" in out
    # Independent work went on: the Apigee side and the Cloud Run services are made.
    for independent in ("org", "instance", "orders", "invoker", "orders-invoker"):
        assert f"{independent}: created (" in out


def test_a_read_google_never_answers_names_the_step_and_changes_nothing(tmp_path: Path) -> None:
    plan = PLANS / "network-basics.yaml"
    faults = {"unavailable": 1.0, "methods": ["compute.networks.get"]}
    with Emulator(faults=faults) as emu:
        run = subprocess.run(
            [sys.executable, "-m", "orchestrator", "apply", str(plan), f"--emulator={emu.url}",
             "--yes"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env=dict(os.environ),
        )
        mutating = [r for r in emu.requests() if r["mutating"]]
    assert run.returncode == 1, run.stdout + run.stderr
    assert ("step vpc (compute.network projects/demo-project/global/networks/demo-vpc): "
            "could not read it: deadline passed; last error: 503") in run.stderr
    assert "Traceback" not in run.stderr
    assert mutating == []
