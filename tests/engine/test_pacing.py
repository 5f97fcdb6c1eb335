"""Requests paced to Google's per-minute quotas (gcp/pacing.py), and steps waiting on Google's
operations without holding a place (scheduler.py): what lets a wide plan run at Google's pace
rather than the engine's threads'."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from googleapiclient import discovery
from googleapiclient.errors import HttpError
from typer.testing import CliRunner

import orchestrator
from orchestrator.cli import app
from orchestrator.gcp.errors import from_exception
from provision_emulator import Emulator

PROJECT = "pace-project"
NETWORKS = 12
START = 1_800_000_000  # a fixed minute: the same requests meet the same limits every run


def networks_plan(count: int = NETWORKS) -> str:
    steps = "\n".join(
        f"  - {{id: net-{i}, kind: compute.network, name: pace-net-{i}, "
        f"properties: {{autoCreateSubnetworks: false}}}}" for i in range(count)
    )
    return f"name: pace\ndefaults: {{project: {PROJECT}}}\nsteps:\n{steps}\n"


@pytest.fixture
def plan(write_plan: Callable[[str], Path]) -> Path:
    return write_plan(networks_plan())


def compute_writes_per_minute(emu: Emulator) -> Counter[int]:
    return Counter(int(r["time"] // 60) for r in emu.requests()
                   if r["api"] == "compute" and r["mutating"] and r["status"] < 400)


def refusals(emu: Emulator) -> list[dict]:
    return [r for r in emu.requests() if r["status"] in (403, 429)]


def test_requests_paced_to_a_named_quota_meet_no_refusal(plan: Path, tmp_path: Path) -> None:
    with Emulator(quotas={"compute.write": 5}, start=START) as emu:
        with orchestrator.load(plan, emulator=emu, state_dir=tmp_path,
                               quotas={"compute.write": 5}) as dep:
            since = emu.clock.now()
            applied = dep.apply()
            assert applied.ok, applied.failures
            # 12 inserts at 5 a minute: the third minute's start at the earliest.
            assert emu.clock.now() - since >= 120
            assert dep.destroy().ok
        assert refusals(emu) == []
        per_minute = compute_writes_per_minute(emu)
        assert sum(per_minute.values()) == 2 * NETWORKS
        assert max(per_minute.values()) <= 5


def test_a_quota_lower_than_the_engine_was_told_is_learned_from_refusals(
        plan: Path, tmp_path: Path) -> None:
    """Another client spends the same quota, or the project's is lower than Google's default:
    the refusals are retried and lower the pace, so fewer are met than there are writes."""
    with Emulator(quotas={"compute.write": 3}, start=START) as emu:
        with orchestrator.load(plan, emulator=emu, state_dir=tmp_path) as dep:
            applied = dep.apply()
            assert applied.ok, applied.failures
            assert dep.pacer.limit("compute.write", PROJECT) < 1500
            assert dep.pacer.limit("compute.read", PROJECT) == 1500
        met = refusals(emu)
        assert met and {r["api"] for r in met} == {"compute"}
        assert len(met) < NETWORKS


def test_a_step_waiting_on_its_operation_does_not_hold_a_place(
        plan: Path, tmp_path: Path) -> None:
    """Two places, twelve networks of 10 simulated seconds each: waiting in the long-poll
    `wait` is not work, so they wait at once; held places would take six rounds."""
    with (Emulator(start=START) as emu,
          orchestrator.load(plan, emulator=emu, state_dir=tmp_path, parallelism=2) as dep):
        since = emu.clock.now()
        assert dep.apply().ok
        assert emu.clock.now() - since < 20
        waits = [r for r in emu.requests() if r["method"] == "compute.globalOperations.wait"]
        assert len(waits) == NETWORKS


def test_parallelism_one_still_runs_in_file_order(plan: Path, tmp_path: Path) -> None:
    with Emulator(start=START) as emu:
        with orchestrator.load(plan, emulator=emu, state_dir=tmp_path, parallelism=1) as dep:
            assert dep.apply().ok
        ops = sorted(emu.dump()["operations"], key=lambda op: op["start"])
        assert [op["target"].rsplit("/", 1)[-1] for op in ops] == [
            f"pace-net-{i}" for i in range(NETWORKS)]
        starts = [op["start"] for op in ops]
        ends = [op["end"] for op in ops]
        assert all(start >= end for start, end in zip(starts[1:], ends, strict=False))


def test_unknown_or_bad_quota_limits_are_refused_before_any_call(plan: Path) -> None:
    with pytest.raises(ValueError, match="unknown quota groups: compute.reeds"):
        orchestrator.load(plan, emulator="http://127.0.0.1:1", quotas={"compute.reeds": 1})
    runner = CliRunner()
    for flag, said in (("compute.reeds=1", "unknown quota groups: compute.reeds"),
                       ("compute.write=0", "expected GROUP=N"),
                       ("compute.write", "expected GROUP=N")):
        result = runner.invoke(app, ["apply", str(plan), "--emulator", "http://127.0.0.1:1",
                                     "--quota", flag, "--yes"])
        assert result.exit_code == 2, result.output
        assert said in result.output


def test_only_a_spent_rate_quota_slows_the_pace_not_other_throttling() -> None:
    """Google's rate-quota refusal carries the ErrorInfo RATE_LIMIT_EXCEEDED, through either
    client library; a bare 429 ("Too many requests") is retried but says nothing of a quota."""
    with Emulator(quotas={"serviceusage.write": 1}, start=START) as emu:
        usage = discovery.build("serviceusage", "v1", credentials=AnonymousCredentials(),
                                static_discovery=True,
                                client_options={"api_endpoint": f"{emu.url}/serviceusage/"})
        name = f"projects/{PROJECT}/services/dns.googleapis.com"
        usage.services().enable(name=name).execute()
        with pytest.raises(HttpError) as spent:
            usage.services().enable(name=name).execute()
        networks = compute_v1.NetworksClient(
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": f"{emu.url}/compute"})
        emu.set_faults(rate_limit=1.0)
        with pytest.raises(exceptions.TooManyRequests) as throttled:
            list(networks.list(project=PROJECT))
    refused, bare = from_exception(spent.value), from_exception(throttled.value)
    assert refused is not None and refused.code == 429 and refused.rate_quota
    assert bare is not None and bare.code == 429 and bare.retryable and not bare.rate_quota
