"""What the crash harnesses share: the CLI run as a subprocess against an in-process emulator,
kill points taken from a reference run's request log, the listener that kills the CLI at one,
what the plan's projects hold, and a tally of what went wrong at each point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import orchestrator
from orchestrator.api import Deployment
from orchestrator.kinds import registry
from provision_emulator import Emulator

PLANS = Path(__file__).parents[2] / "plans"
# A resume comes right after the kill, at the same simulated moment, so it meets the killed run's
# operation still running. With Apigee's real durations, an instance create killed halfway holds
# the organization for its 30 minutes, past the deadline of the next Apigee step of the resumed
# run (the engine pushes a deadline back for time queued behind its own operations, not behind
# a dead run's). The harness is about crash consistency, so Apigee's and Service Networking's
# operations are cut to seconds.
DURATIONS = {"apigee": 10.0, "servicenetworking": 10.0, "servicenetworking.producerRelease": 10.0}
TIMEOUT = 300  # seconds: a run past it is hung, and killed
SAMPLE = 6  # kill points per command unless CRASH=all

Moment = Literal["arrived", "answered"]
MOMENTS: tuple[Moment, ...] = ("arrived", "answered")


@dataclass(frozen=True)
class Point:
    """Kill at the n-th arrival of `method`: as it arrives (Google has the call, the client
    never hears back), or once it was answered, as the client's next request arrives (with
    steps in parallel, that request may come from another step before this one's answer was
    read: a moment just after the answer, at the latest once the client acted on it)."""

    method: str
    nth: int
    moment: Moment

    def __str__(self) -> str:
        return f"{self.method} #{self.nth} {self.moment}"

    @classmethod
    def parse(cls, text: str) -> Point:
        """A point as `str` writes it."""
        method, nth, moment = text.split()
        if moment not in MOMENTS:
            raise ValueError(f"{text!r}: the moment is one of {', '.join(MOMENTS)}")
        return cls(method, int(nth.lstrip("#")), cast(Moment, moment))


class Killer:
    """A request listener that SIGKILLs the CLI (`pid`, set once started) at `point`."""

    def __init__(self, point: Point) -> None:
        self.point = point
        self.count = 0
        self.pid: int | None = None
        self.fired = False
        self._answered: dict[str, Any] | None = None  # the chosen request's log entry

    def __call__(self, entry: dict[str, Any]) -> None:
        if self.pid is None or self.fired:
            return
        if self._answered is not None:
            # The entry is the log's own: its status is set once the emulator answered.
            if self._answered["status"] is not None:
                self._kill()
            return
        if entry["method"] != self.point.method:
            return
        self.count += 1
        if self.count == self.point.nth:
            if self.point.moment == "arrived":
                self._kill()
            else:
                self._answered = entry

    def _kill(self) -> None:
        assert self.pid is not None
        self.fired = True
        os.kill(self.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Run:
    returncode: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def cli(emu: Emulator, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args, f"--emulator={emu.url}"],
        cwd=cwd, env=dict(os.environ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run(emu: Emulator, cwd: Path, *args: str, killer: Killer | None = None) -> Run:
    """The CLI run to its end, or to its kill by `killer`."""
    cwd.mkdir(parents=True, exist_ok=True)
    if killer is not None:
        emu.add_request_listener(killer)
    try:
        proc = cli(emu, cwd, *args)
        if killer is not None:
            killer.pid = proc.pid
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"(killed by the harness: still running after {TIMEOUT} s)\n"
    finally:
        if killer is not None:
            emu.remove_request_listener(killer)
    return Run(proc.returncode, out, err)


def inventory(emu: Emulator, projects: Sequence[str]) -> Counter[tuple[str, str]]:
    """What the plan's projects hold, by API and collection, but for what destroy leaves by
    design (the APIs of `left_on_destroy` kinds: enabled services)."""
    left = {kind.api for kind in registry().values() if kind.left_on_destroy}
    counts: Counter[tuple[str, str]] = Counter()
    for api, resources in emu.dump()["resources"].items():
        if api in left:
            continue
        for path, res in resources.items():
            if any(project in path for project in projects):
                counts[(api, res["collection"])] += 1
    return counts


def duplicate_members(emu: Emulator) -> list[str]:
    dupes = []
    for policy in emu.dump()["policies"]:
        for binding in policy.get("policy", policy).get("bindings", []):
            members = binding.get("members", [])
            if len(members) != len(set(members)):
                dupes.append(f"{policy['path']} {binding['role']}")
    return dupes


def load(plan: Path, emu: Emulator, work: Path) -> Deployment:
    """The plan as the CLI run in `work` sees it: its ledger under work/.provision."""
    return orchestrator.load(plan, emulator=emu, state_dir=work / ".provision")


def pending(dep: Deployment) -> list[tuple[str, str, str]]:
    """The plan's steps that are not noop, as (step, action, reason), from live reads."""
    return [(c.step, c.action, c.reason) for c in dep.plan_changes().steps if c.action != "noop"]


def unsettled(dep: Deployment) -> dict[str, str]:
    """The ledger's records that are not `present`, with their status and operation."""
    return {sid: f"{r.status} {r.operation}" for sid, r in dep.ledger().resources.items()
            if r.status != "present"}


def kill_points(log: list[dict[str, Any]]) -> list[tuple[int, Point]]:
    """Numbered kill points from a reference run's log: two per mutating request, as it arrives
    and once answered. CRASH=all gives every one; CRASH="METHOD #N MOMENT, ..." those, as
    reported (to replay them: the numbers follow the reference run, whose order varies with
    the parallel steps); else SAMPLE spread over the run, the moments alternating."""
    seen: Counter[str] = Counter()
    calls = []
    for entry in log:
        seen[entry["method"]] += 1
        if entry["mutating"]:
            calls.append((entry["method"], seen[entry["method"]]))
    every = [Point(method, nth, moment) for method, nth in calls for moment in MOMENTS]
    chosen = os.environ.get("CRASH", "")
    if chosen == "all":
        numbers = list(range(len(every)))
    elif chosen:
        numbers = [every.index(point) for point in map(Point.parse, chosen.split(","))]
    else:
        k = min(SAMPLE, len(calls))
        spread = [round(i * (len(calls) - 1) / max(k - 1, 1)) for i in range(k)]
        numbers = [call * len(MOMENTS) + i % len(MOMENTS) for i, call in enumerate(spread)]
    return [(n, every[n]) for n in numbers]


@dataclass
class Tally:
    """One command's figures over its kill points, and what went wrong at each."""

    command: str
    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def add(self, figure: str, n: int = 1) -> None:
        self.counts[figure] += n

    def fail(self, number: int, point: Point, problems: list[str]) -> None:
        report = f"{self.command}, kill point {number} ({point}):\n" + "\n".join(problems)
        self.failures.append(report)
        print(f"FAILED {report}", flush=True)

    def line(self) -> str:
        c = self.counts
        minutes = (time.monotonic() - self.started) / 60
        return (
            f"crash harness: {self.command}: {c['kill points']} kill points "
            f"({c['not reached']} not reached), {c['stuck']} stuck, {c['orphans']} orphans, "
            f"{c['duplicates']} duplicates, {c['missing']} missing, "
            f"{c['not restored']} not restored, {minutes:.1f} min"
        )


def kill(emu: Emulator, work: Path, tally: Tally, point: Point, *args: str) -> list[str]:
    """Run the command, killed at `point`; what went wrong, if anything. A point the run never
    reached (the method's n-th call did not come, or nothing came after its answer) leaves the
    run to finish, and the checks that follow still hold."""
    killer = Killer(point)
    killed = run(emu, work, *args, killer=killer)
    tally.add("kill points")
    if not killer.fired:
        tally.add("not reached")
        return [] if killed.returncode == 0 else [f"the run not killed failed: {killed}"]
    if killed.returncode != -signal.SIGKILL:
        return [f"the killed run was not killed: {killed}"]
    return []
