"""Benchmark: wall time against the critical path, requests, start-up and scale.

    python scripts/bench.py [--repeat 5]

Prints one table, then start-up and scale figures and the issue's targets, met or missed.

Scenarios: plans/psc-cloud-run.yaml, each architecture-B plan present (vpn-hub, shared-vpc-hub,
northbound-psc), and two generated wide plans (Cloud Run services, each with a serverless NEG
and a regional backend service, in 4 projects: 50 services a project, 608 steps; 166 a project,
2,000 steps). Each is applied, re-applied (a no-op, best of 3) and destroyed twice: by this
engine as shipped (parallelism 8, operations awaited with the long-poll `wait` where Google has
one, requests paced to Google's default quotas), and by the baseline, the way the Terraform
provider and the Apigee provisioning scripts wait: one step at a time in file order, every
operation polled with `get` every 10 s (`poll="fixed:10"`), and a step done when its operation
is, without waiting for the resource to be ready (`readiness=False`: a VPN tunnel ESTABLISHED, a
BGP session UP, an endpoint attachment ACCEPTED; the Terraform provider does not wait for them).
A wide plan's baseline is measured on one of its 4 identical projects and multiplied by 4: done
one step at a time, the projects simply add up, and the whole would take hours of simulated
time. Every run's emulator enforces Google's default per-minute quotas (provision_emulator/
quotas.py); the refusals met are counted.

Each run is a process of its own (scripts/bench_run.py, with an in-process emulator), and they
run side by side, a few seconds apart: most of their time is spent waiting on simulated
operations. The wide plans and the scale test keep a core busy, so they start once the other
no-ops are timed.

Critical path (scripts/critical_path.py): the makespan of an ideal run of the plan's graph with
unlimited workers and free requests, each step taking the emulator's simulated durations for its
operations (operations.DURATIONS), and Google's one-operation-at-a-time parents (an Apigee
organization, a network's peering) taken one step at a time. For destroy the graph is reversed,
and the Service Networking connection waits out the emulator's release lag after the Apigee
organization. For the no-op re-apply the reference is the slowest single read chain: each
step's resource read once, alone, summed along the heaviest dependency path, each read costing
its requests x 0.1 s plus the real time of its local work.

Quota bound: the least time Google's default per-minute quotas allow for the requests the run
made (scripts/bench_run.py's quota_bound: n requests of one quota group and project, at L a
minute, span ceil(n / L) of Google's fixed minutes). A run is compared with the larger of the
two.

Time: each scenario runs on its emulator's virtual clock (provision_emulator/clock.py), every
request costing Google's 0.1 s round trip in simulated time (the emulator's latency fault). The
apply and destroy rows are simulated seconds: the schedule as it would unfold on Google, which
the machine's load cannot change; the engine's own work (CPU, ledger fsyncs) stands the clock
still and is reported apart, in real seconds. The no-op rows add the two, simulated round trips
and real local work, as an upper bound of what it would take against Google.

Scale: a generated 1,000-step plan (scripts/bench_validate.py) is validated by the CLI (best of
--repeat) and applied (scripts/bench_scale.py) against `provision emulator` in another process,
so the process CPU time of the apply, divided by the steps, is the orchestrator's alone; peak
RSS is that process's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_plans
from bench_run import NOOP_DONE
from bench_validate import generate

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent
PYTHON = sys.executable
PROVISION = str(Path(sys.executable).with_name("provision"))
GOOGLE_ROUND_TRIP = 0.1  # simulated seconds
ARCHITECTURE_B = ("vpn-hub", "shared-vpc-hub", "northbound-psc")
WIDE_PROJECTS = 4
LARGE_SERVICES = 166  # 4 projects x (2 APIs + 166 x 3 steps): the 2,000-step plan
SCALE_STEPS = 1000
PARALLELISM = 8  # the engine's default
STAGGER = 5.0  # real seconds between the starts of two scenario processes


@dataclass
class Scenario:
    name: str
    plan: Path
    baseline_plan: Path
    baseline_factor: int = 1


def _best(argv: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def startup(repeat: int, big_plan: Path) -> dict[str, float]:
    return {
        "bare": _best([PYTHON, "-c", "pass"], repeat),
        "help": _best([PROVISION, "--help"], repeat),
        "validate": _best([PROVISION, "validate", "plans/psc-cloud-run.yaml"], repeat),
        "validate_1000": _best([PROVISION, "validate", str(big_plan)], repeat),
    }


def _worker(script: str, arg: str, noop_done: threading.Event | None = None) -> dict[str, Any]:
    """Run a worker script; its last line of output is its JSON result."""
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen([PYTHON, str(SCRIPTS / script), arg], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            if line.strip() == NOOP_DONE and noop_done is not None:
                noop_done.set()
            lines.append(line)
        if noop_done is not None:
            noop_done.set()  # whatever happened, nobody waits for it any longer
        if proc.wait() != 0:
            errors.seek(0)
            last = errors.read().strip().splitlines()
            return {"error": last[-1] if last else "failed"}
    return json.loads(lines[-1])


def _scenario(plan: Path, tmp: Path, parallelism: int, poll: str, readiness: bool,
              noop_done: threading.Event | None = None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(dir=tmp))
    # One step at a time, a no-op is the same every time: one try is enough.
    args = {"plan": str(plan), "workdir": str(workdir),
            "parallelism": parallelism, "poll": poll, "readiness": readiness,
            "round_trip": GOOGLE_ROUND_TRIP, "noop_tries": 2 if parallelism > 1 else 1,
            "quotas": True}
    return _worker("bench_run.py", json.dumps(args), noop_done)


def _lanes(jobs: list[list[tuple[str, Any]]], stagger: float) -> dict[str, Any]:
    """Run each lane's (key, thunk) jobs in order, lanes side by side, the i-th lane starting
    i x `stagger` seconds late; results by key."""
    results: dict[str, Any] = {}

    def lane(delay: float, items: list[tuple[str, Any]]) -> None:
        time.sleep(delay)
        for key, thunk in items:
            results[key] = thunk()

    threads = [threading.Thread(target=lane, args=(i * stagger, items))
               for i, items in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def scenarios(tmp: Path) -> tuple[list[Scenario], list[str]]:
    found = [Scenario("psc-cloud-run", ROOT / "plans/psc-cloud-run.yaml",
                      ROOT / "plans/psc-cloud-run.yaml")]
    missing = []
    for name in ARCHITECTURE_B:
        path = ROOT / "plans" / f"{name}.yaml"
        if path.exists():
            found.append(Scenario(name, path, path))
        else:
            missing.append(name)
    for services in (50, LARGE_SERVICES):
        wide, slice_ = tmp / f"wide-{services}.yaml", tmp / f"wide-{services}-slice.yaml"
        wide.write_text(bench_plans.wide(WIDE_PROJECTS, services))
        slice_.write_text(bench_plans.wide(1, services))
        steps = WIDE_PROJECTS * (2 + 3 * services)
        found.append(Scenario(f"wide ({WIDE_PROJECTS}x{services} services, {steps:,} steps)",
                              wide, slice_, WIDE_PROJECTS))
    return found, missing


# --- the report ----------------------------------------------------------------------------


def _f(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _polls(phase: dict[str, Any], kind: str) -> str:
    ops = phase[f"{kind}_ops"]
    return f"{phase[f'{kind}_polls'] / ops:.1f}" if ops else "—"


def table(found: list[Scenario], results: dict[str, Any]) -> tuple[list[str], list[str]]:
    head = ("| scenario | run | critical path (s) | quota bound (s) | wall (s) "
            "| wall / bound | engine real (s) | requests | refused | mutating "
            "| polls per op: compute / other | baseline wall (s) | baseline requests "
            "| baseline / ours |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    notes: list[str] = []
    for sc in found:
        ours, base = results[f"{sc.name}/ours"], results[f"{sc.name}/baseline"]
        if not ours.get("apply", {}).get("ok"):
            why = ours.get("error") or "; ".join(ours.get("apply", {}).get("failures", []))
            lines.append(f"| {sc.name} | apply failed |" + " |" * (head.count("|") - 3))
            notes.append(f"{sc.name}: did not apply: {why[:300]}")
            continue
        for phase, ref_key in (("apply", "critical_apply"), ("noop", "read_chain"),
                               ("destroy", "critical_destroy")):
            mine = ours[phase]
            quota = mine["quota_bound"] if phase != "noop" else None
            ref = max(ours[ref_key], quota or 0.0)
            other = base.get(phase) if base.get("apply", {}).get("ok") else None
            bwall = other["wall"] * sc.baseline_factor if other else None
            breq = other["requests"] * sc.baseline_factor if other else None
            failed = "" if mine["ok"] else " (failed)"
            label = {"apply": "apply", "noop": "no-op re-apply", "destroy": "destroy"}[phase]
            digits = 2 if phase == "noop" else 0
            ref_text = _f(ours[ref_key], digits) + (" (read chain)" if phase == "noop" else "")
            lines.append(
                f"| {sc.name} | {label}{failed} | {ref_text} | {_f(quota)} "
                f"| {_f(mine['wall'], digits)} "
                f"| {_f(mine['wall'] / ref, 2) if ref else '—'} | {_f(mine['real'], 1)} "
                f"| {mine['requests']:,} | {mine['refused']} "
                f"| {mine['mutating']} | {_polls(mine, 'compute')} / {_polls(mine, 'other')} "
                f"| {_f(bwall)} | {_f(breq)} "
                f"| {_f(bwall / mine['wall'], 1) if bwall else '—'} |"
            )
            if not mine["ok"]:
                notes.append(f"{sc.name} {label}: {'; '.join(mine['failures'])[:300]}")
        if base.get("error") or not base.get("apply", {}).get("ok"):
            why = base.get("error") or "; ".join(base["apply"]["failures"])
            notes.append(f"{sc.name}: baseline did not apply: {why[:300]}")
        if sc.baseline_factor > 1:
            notes.append(f"{sc.name}: peak {ours['threads']} threads, peak RSS "
                         f"{ours['peak_rss_mib']:.0f} MiB (the process, with its in-process "
                         "emulator)")
        if ours.get("guessed_kinds"):
            notes.append(f"{sc.name}: costed at their API's default duration: "
                         f"{', '.join(ours['guessed_kinds'])}")
    return lines, notes


def targets(found: list[Scenario], results: dict[str, Any], start: dict[str, float],
            scale: dict[str, Any]) -> list[str]:
    out = []

    def check(ok: bool, text: str) -> None:
        out.append(f"- [{'x' if ok else ' '}] {text}")

    for sc in found:
        ours = results[f"{sc.name}/ours"]
        if not ours.get("apply", {}).get("ok"):
            continue
        wide = sc.baseline_factor > 1
        for phase, ref in (("apply", "critical_apply"), ("destroy", "critical_destroy")):
            mine = ours[phase]
            ratio = mine["wall"] / max(ours[ref], mine["quota_bound"])
            most = 1.3 if wide else 1.05
            check(ratio <= most and mine["ok"],
                  f"{sc.name} {phase}: wall / max(critical path, quota bound) {ratio:.3f} "
                  f"(≤ {most}), {mine['refused']} quota refusals met, "
                  f"{len(mine['failures'])} failures (0)")
        polls = [ours[p]["compute_polls"] / ours[p]["compute_ops"]
                 for p in ("apply", "destroy") if ours[p]["compute_ops"]]
        if polls:
            check(max(polls) <= 3,
                  f"{sc.name}: compute polls per operation {max(polls):.1f} (≤ 3)")
        noop = ours["noop"]
        ratio = noop["wall"] / ours["read_chain"]
        check(noop["mutating"] == 0 and ratio <= 2,
              f"{sc.name} no-op: {noop['mutating']} mutating requests (0), wall / read chain "
              f"{ratio:.2f} (≤ 2)")
    help_over = start["help"] - start["bare"]
    check(help_over <= 0.3, f"`provision --help`: {help_over:.2f} s above bare start (≤ 0.3)")
    check(start["validate_1000"] < 1,
          f"1,000-step plan validated by the CLI in {start['validate_1000']:.2f} s (< 1)")
    if scale.get("ok"):
        per_step = scale["apply_cpu"] / scale["steps"] * 1000
        check(per_step < 5, f"engine CPU per step {per_step:.1f} ms (< 5)")
        check(scale["peak_rss_mib"] < 300,
              f"peak RSS {scale['peak_rss_mib']:.0f} MiB (< 300)")
    else:
        out.append(f"- [ ] scale test did not run: {scale}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    began = time.perf_counter()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"command: {command}")

    with tempfile.TemporaryDirectory(prefix="bench-") as tmpdir:
        tmp = Path(tmpdir)
        big = tmp / "scale.yaml"
        big.write_text(generate(SCALE_STEPS))
        start = startup(args.repeat, big)
        found, missing = scenarios(tmp)

        wides = [sc for sc in found if sc.baseline_factor > 1]
        noops: list[threading.Event] = []

        def job(sc: Scenario, mode: str) -> tuple[str, Any]:
            plan, par, poll, ready = ((sc.plan, PARALLELISM, "wait", True) if mode == "ours"
                                      else (sc.baseline_plan, 1, "fixed:10", False))
            done = threading.Event() if mode == "ours" and sc not in wides else None
            if done is not None:
                noops.append(done)
            return (f"{sc.name}/{mode}",
                    lambda: _scenario(plan, tmp, par, poll, ready, done))

        def after_noops() -> None:
            for done in noops:
                done.wait()

        # Each scenario starts a few seconds after the one before, so that their bursts of
        # work (start-up, the compute steps before the Apigee organization) do not land on the
        # two cores at once. The wide plans and the scale test keep a core busy throughout:
        # they start once this engine's other runs have timed their no-ops, which need a core
        # too (the baseline's, one read at a time, mostly wait on the round trips).
        lanes = [[job(sc, mode)] for mode in ("ours", "baseline") for sc in found
                 if not (mode == "ours" and sc in wides)]
        lanes += [[("", after_noops), *(job(sc, "ours") for sc in wides)],
                  [("", after_noops),
                   ("scale", lambda: _worker("bench_scale.py", str(SCALE_STEPS)))]]
        results = _lanes(lanes, STAGGER)

    lines, notes = table(found, results)
    notes.insert(0, "apply and destroy: wall is simulated seconds on the virtual clock (Google's "
                    "durations, a 0.1 s round trip per request), engine real is the real seconds "
                    "of the engine's own work, which stands the clock still; no-op: wall is "
                    "simulated round trips plus real local work")
    print()
    print("\n".join(lines))
    if missing:
        notes.append(f"architecture-B plans missing: {', '.join(missing)}")
    for note in notes:
        print(f"- {note}")
    scale = results["scale"]
    print()
    print(f"start-up (best of {args.repeat}): bare `python -c pass` {start['bare']:.3f} s; "
          f"`provision --help` +{start['help'] - start['bare']:.3f} s; "
          f"`provision validate plans/psc-cloud-run.yaml` +"
          f"{start['validate'] - start['bare']:.3f} s")
    if scale.get("ok"):
        print(f"scale ({scale['steps']:,} steps): validated by the CLI in "
              f"{start['validate_1000']:.2f} s; apply: CPU {scale['apply_cpu']:.1f} s = "
              f"{scale['apply_cpu'] / scale['steps'] * 1000:.1f} ms per step, wall "
              f"{scale['apply_wall']:.0f} s real, ledger {scale['ledger_bytes'] / 1e6:.1f} MB; "
              f"peak RSS {scale['peak_rss_mib']:.0f} MiB")
    print()
    print("targets:")
    print("\n".join(targets(found, results, start, scale)))
    print(f"\n(benchmark took {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
