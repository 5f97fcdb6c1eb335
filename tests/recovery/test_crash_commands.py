"""Crash harness for every command that changes the cloud: `provision apply`, `destroy` and
`rollback`, each killed with SIGKILL at its mutating requests, then run again.

The kill points come from a reference run of the same command: the n-th arrival of each
mutating method, killed as it arrives (Google has the call, the client never hears back) or
once answered, at the client's next request. The second run must exit 0 and settle every
record, and leave the cloud as a clean run of the command would: after apply, exactly what a
clean apply makes (no duplicate, nothing missing, the plan shows no change, destroy leaves
nothing); after destroy, nothing of the plan's projects (enabled APIs aside) and an empty
ledger; after rollback, what the apply before the rolled-back one made, the plan of that
version showing no change.

By default each command is killed at a sample of its points; CRASH=all kills it at every one
(scripts/crash_harness.py prints the figures), CRASH="METHOD #N MOMENT, ..." at those.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provision_emulator import Emulator

from .crashkit import (
    DURATIONS,
    PLANS,
    Point,
    Run,
    Tally,
    duplicate_members,
    inventory,
    kill,
    kill_points,
    load,
    pending,
    run,
    unsettled,
)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Architecture:
    plan: Path
    projects: tuple[str, ...]


A = Architecture(PLANS / "psc-cloud-run.yaml", ("apigee-demo-project", "backend-demo-project"))
B = Architecture(PLANS / "vpn-hub.yaml", ("apigee-hub-project", "backend-spoke-project"))
ARCHITECTURES = [pytest.param(A, id="psc-cloud-run"), pytest.param(B, id="vpn-hub")]

# Plan v2 of architecture A, applied over v1 and then rolled back: updates (an envgroup's
# hostnames, both DNS records' TTLs), a replace that takes its dependents along (the PSC NAT
# subnet's range: its service attachment and Apigee's endpoint attachment go with it) and a
# create (a firewall rule).
V2_EDITS = {
    "envgroup": ("hostnames: [api.example.com]", "hostnames: [api.example.com, shop.example.com]"),
    "apigee-record": ("ttl: 300", "ttl: 60"),
    "backend-record": ("ttl: 300", "ttl: 60"),
    "psc-nat-subnet": ("ipCidrRange: 10.2.2.0/24", "ipCidrRange: 10.2.3.0/24"),
}
V2_NEW_STEP = """  - id: backend-allow-proxies
    kind: compute.firewall
    name: allow-proxy-only
    project: ${vars.backend_project}
    properties:
      network: ${backend-vpc.selfLink}
      direction: INGRESS
      sourceRanges: [10.2.1.0/24]
      allowed: [{IPProtocol: tcp, ports: ["443"]}]
"""

# A zone's change log only grows (v2's changes and the rollback's stay in it): history, not state.
CHANGE_LOG = ("dns", "changes")


def write_v2(directory: Path) -> Path:
    """Plan v2 of architecture A, which finds v1's secret files wherever it is written."""
    text = A.plan.read_text().replace("file: demo-tls/", f"file: {A.plan.parent}/demo-tls/")
    for step, (old, new) in V2_EDITS.items():
        start = text.index(f"  - id: {step}\n")
        end = text.find("\n  - ", start + 1)
        assert old in text[start:end], (step, old)
        text = text[:start] + text[start:end].replace(old, new) + text[end:]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / A.plan.name  # its `name:` is v1's, so is its ledger
    path.write_text(text + V2_NEW_STEP)
    return path


def each_point(
    emu: Emulator,
    tmp_path: Path,
    tally: Tally,
    log: list[dict[str, Any]],
    check: Callable[[Path, Point], list[str]],
) -> None:
    """Run `check(work, point)` at each kill point of the reference `log`, on a clean
    cloud and in a fresh directory, and tally what it finds; a point's exception is that
    point's failure, so the other points still run."""
    for number, point in kill_points(log):
        print(f"{tally.command}: kill point {number}: {point}", flush=True)
        emu.reset()
        try:
            problems = check(tmp_path / f"kill-{number}", point)
        except Exception:
            problems = [traceback.format_exc()]
        if problems:
            tally.fail(number, point, problems)
    print(tally.line(), flush=True)


def apply(emu: Emulator, work: Path, *plans: str) -> None:
    """The setup before a kill: clean applies, one plan after the other."""
    for plan in plans:
        applied = run(emu, work, "apply", plan, "--yes", "--json")
        assert applied.returncode == 0, applied


def stuck(tally: Tally, again: Run, unsettled_records: list[str]) -> list[str]:
    """A command is stuck when its second run fails or leaves records unsettled."""
    problems = [f"the second run failed: {again}"] if again.returncode != 0 else []
    problems += unsettled_records
    if problems:
        tally.add("stuck")
    return problems


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_killed_apply_resumes_without_duplicates_or_orphans(
    arch: Architecture, tmp_path: Path
) -> None:
    plan = str(arch.plan)
    tally = Tally(f"apply {arch.plan.name}")
    with Emulator(durations=DURATIONS) as emu:
        reference = run(emu, tmp_path / "reference", "apply", plan, "--yes", "--json")
        assert reference.returncode == 0, reference
        expected = inventory(emu, arch.projects)

        def check(work: Path, point: Point) -> list[str]:
            problems = kill(emu, work, tally, point, "apply", plan, "--yes", "--json")
            again = run(emu, work, "apply", plan, "--yes")
            with load(arch.plan, emu, work) as dep:
                records, steps = len(dep.ledger().resources), len(dep.plan.steps)
                left = unsettled(dep)
                problems += stuck(tally, again, [
                    f"{records} records for {steps} steps, unsettled: {left}"
                ] if left or records != steps else [])
                found = inventory(emu, arch.projects)
                extra, missing = found - expected, expected - found
                dupes = duplicate_members(emu)
                tally.add("duplicates", sum(extra.values()) + len(dupes))
                tally.add("missing", sum(missing.values()))
                if extra or missing or dupes:
                    problems.append(f"duplicates {dict(extra)} {dupes}, missing {dict(missing)}")
                if changes := pending(dep):
                    problems.append(f"the plan still shows changes: {changes}")
                destroyed = dep.destroy()
                if not destroyed.ok:
                    problems.append(f"destroy after the resume failed: {destroyed.failures}")
            if orphans := inventory(emu, arch.projects):
                tally.add("orphans", sum(orphans.values()))
                problems.append(f"orphans after destroy: {dict(orphans)}")
            return problems

        each_point(emu, tmp_path, tally, emu.requests(), check)
    assert not tally.failures, "\n\n".join(tally.failures)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_killed_destroy_finishes_on_the_next_run(arch: Architecture, tmp_path: Path) -> None:
    plan = str(arch.plan)
    tally = Tally(f"destroy {arch.plan.name}")
    with Emulator(durations=DURATIONS) as emu:
        reference = tmp_path / "reference"
        apply(emu, reference, plan)
        start = len(emu.requests())
        destroyed = run(emu, reference, "destroy", plan, "--yes", "--json")
        assert destroyed.returncode == 0, destroyed

        def check(work: Path, point: Point) -> list[str]:
            apply(emu, work, plan)
            problems = kill(emu, work, tally, point, "destroy", plan, "--yes", "--json")
            again = run(emu, work, "destroy", plan, "--yes")
            with load(arch.plan, emu, work) as dep:
                records = dep.ledger().resources
            problems += stuck(tally, again, [
                "records left: " + ", ".join(f"{sid} {r.status}" for sid, r in records.items())
            ] if records else [])
            if orphans := inventory(emu, arch.projects):
                tally.add("orphans", sum(orphans.values()))
                problems.append(f"orphans: {dict(orphans)}")
            return problems

        each_point(emu, tmp_path, tally, emu.requests()[start:], check)
    assert not tally.failures, "\n\n".join(tally.failures)


def test_killed_rollback_restores_the_previous_apply(tmp_path: Path) -> None:
    v1, v2 = str(A.plan), str(write_v2(tmp_path / "v2"))
    tally = Tally(f"rollback {A.plan.name}")
    with Emulator(durations=DURATIONS) as emu:
        reference = tmp_path / "reference"
        apply(emu, reference, v1)
        expected = inventory(emu, A.projects)
        del expected[CHANGE_LOG]
        apply(emu, reference, v2)
        start = len(emu.requests())
        rolled_back = run(emu, reference, "rollback", v2, "--yes", "--json")
        assert rolled_back.returncode == 0, rolled_back
        with load(A.plan, emu, reference) as dep:
            assert pending(dep) == []

        def check(work: Path, point: Point) -> list[str]:
            apply(emu, work, v1, v2)
            problems = kill(emu, work, tally, point, "rollback", v2, "--yes", "--json")
            again = run(emu, work, "rollback", v2, "--yes")
            with load(A.plan, emu, work) as dep:
                left = unsettled(dep)
                problems += stuck(tally, again, [f"unsettled: {left}"] if left else [])
                if changes := pending(dep):
                    tally.add("not restored", len(changes))
                    problems.append(f"v1's plan shows changes: {changes}")
            found = inventory(emu, A.projects)
            del found[CHANGE_LOG]
            extra, missing = found - expected, expected - found
            dupes = duplicate_members(emu)
            tally.add("orphans", sum(extra.values()))
            tally.add("duplicates", len(dupes))
            tally.add("missing", sum(missing.values()))
            if extra or missing or dupes:
                problems.append(f"beyond v1: {dict(extra)}, duplicate members: {dupes}, "
                                f"missing: {dict(missing)}")
            return problems

        each_point(emu, tmp_path, tally, emu.requests()[start:], check)
    assert not tally.failures, "\n\n".join(tally.failures)
