"""One benchmark scenario in this process: apply, no-op re-apply and destroy of one plan on an
in-process emulator on its virtual clock, measured in simulated seconds, in real seconds and in
the emulator's request log.

Every request costs Google's round trip in simulated time (the emulator's latency fault), and
the run's operations their simulated durations, so a phase's simulated time is its schedule as
it would unfold on Google, without the engine's own CPU work: the virtual clock stands still
while the engine works. That work is the phase's real time, reported beside it.

Run by scripts/bench.py in a subprocess per scenario (so scenarios can overlap without sharing
an interpreter lock), which reads the JSON it prints.
"""

from __future__ import annotations

import json
import math
import re
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import critical_path as cp

import orchestrator
from google_facts import discovery
from google_facts.quotas import DEFAULTS, MINUTE, consumer_of, group_of
from orchestrator.engine.steps import kind_named, target_of
from provision_emulator import Emulator

COMPUTE_POLL = re.compile(r"^compute\.\w*Operations\.(wait|get)$")
OTHER_POLL = re.compile(r"\.operations\.(wait|get)$|^dns\.changes\.get$")
READ_TRIES = 3
NOOP_DONE = "no-op measured"  # told to scripts/bench.py, which waits for it to load the machine


def quota_bound(requests: list[dict[str, Any]]) -> float:
    """The least time Google's default per-minute quotas allow for these requests: a group and
    consumer that made n requests against a limit of L a minute spans ceil(n / L) of Google's
    fixed minutes, so its last request comes (ceil(n / L) - 1) minutes after its first at the
    soonest. Refused requests are not counted (they were sent again)."""
    counts: Counter[tuple[str, str]] = Counter()
    for r in requests:
        if r["status"] in (403, 429) or not r["method"]:
            continue
        counted = group_of(discovery.method(r["api"], r["method"]))
        consumer = consumer_of(r["path"].strip("/").split("/"))
        if counted and consumer:
            counts[(counted[0], consumer)] += counted[1]
    return max((math.ceil(n / DEFAULTS[group]) - 1) * MINUTE
               for (group, _), n in counts.items()) if counts else 0.0


def _phase(emu: Emulator, run: Callable[[], Any]) -> dict[str, Any]:
    before = len(emu.requests())
    since = emu.clock.now()
    start = time.monotonic()
    result = run()
    real = time.monotonic() - start
    wall = emu.clock.now() - since
    requests = emu.requests()[before:]
    ops = [o for o in emu.dump()["operations"] if o["start"] >= since]
    methods = [r["method"] for r in requests]
    return {
        "ok": result.ok,
        "failures": [f"{f.step}: {f.message}" for f in result.failures],
        "wall": wall,
        "real": real,
        "requests": len(requests),
        "refused": sum(1 for r in requests if r["status"] in (403, 429)),
        "quota_bound": quota_bound(requests),
        "mutating": sum(1 for r in requests if r["mutating"]),
        "compute_polls": sum(1 for m in methods if COMPUTE_POLL.match(m)),
        "compute_ops": sum(1 for o in ops if o["api"] == "compute"),
        "other_polls": sum(
            1 for m in methods if OTHER_POLL.search(m) and not COMPUTE_POLL.match(m)
        ),
        "other_ops": sum(1 for o in ops if o["api"] != "compute"),
    }


def _read_chain(dep: Any, emu: Emulator, round_trip: float) -> float:
    """The slowest chain of single reads through the plan's graph, in real seconds as against
    Google: each step's resource read alone, costing its requests x `round_trip` plus the local
    time it took (the best of a few: the machine is shared); summed along the heaviest
    dependency path."""
    records = dep.ledger().resources
    weights: dict[str, float] = {}
    for step in dep.plan.steps:
        kind = kind_named(step.kind)
        rec = records[step.id]
        target = target_of(kind, rec.path, rec.spec)
        sent = sum(emu.request_counts().values())
        local = []
        for _ in range(READ_TRIES):
            start = time.monotonic()
            kind.adapter.read(dep.clients, target)
            local.append(time.monotonic() - start)
        requests = (sum(emu.request_counts().values()) - sent) / READ_TRIES
        weights[step.id] = requests * round_trip + min(local)
    return cp.longest_chain(weights, {s.id: s.deps for s in dep.plan.steps})


def run(plan: str, workdir: str, parallelism: int, poll: str, readiness: bool,
        round_trip: float, noop_tries: int, quotas: bool = True) -> dict[str, Any]:
    """quotas: the emulator enforces Google's default per-minute quotas."""
    out: dict[str, Any] = {"plan": plan, "parallelism": parallelism, "poll": poll}
    with Emulator(faults={"latency": round_trip}, quotas=quotas) as emu:
        dep = orchestrator.load(
            plan, emulator=emu, parallelism=parallelism, poll=poll,
            readiness=readiness, state_dir=workdir, ledger=str(Path(workdir) / "ledger.json"),
        )
        with dep:
            # As `provision apply` does: the plan is shown (read) first; that also pays this
            # process's one-time imports, which would otherwise count as the apply's real time.
            dep.plan_changes()
            out["apply"] = _phase(emu, dep.apply)
            # The Deployment keeps its step threads (a pool never shrinks): the apply's peak.
            out["threads"] = threading.active_count()
            if not out["apply"]["ok"]:
                return out
            model = cp.Model()
            records = dep.ledger().resources
            for verb, name in (("create", "apply"), ("delete", "destroy")):
                tasks = cp.plan_tasks(dep.plan, records, model, verb)
                out[f"critical_{name}"] = cp.makespan(tasks)
            out["guessed_kinds"] = sorted(model.guessed)
            out["read_chain"] = _read_chain(dep, emu, round_trip)
            # A no-op waits on no operation: its time is its round trips (simulated) and its
            # local work (real: ledger lock, load, reads' CPU), counted one after the other, as
            # against Google they would at most take. Best of a few, since another scenario's
            # burst of work on the machine could otherwise decide it.
            out["noop"] = min((_phase(emu, dep.apply) for _ in range(noop_tries)),
                              key=lambda phase: phase["wall"] + phase["real"])
            out["noop"]["wall"] += out["noop"]["real"]
            print(NOOP_DONE, flush=True)
            out["destroy"] = _phase(emu, dep.destroy)
    # The process's, with its in-process emulator and that emulator's threads.
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(run(**args)))
