"""Runs one command over a fleet's instances: each a Deployment of the fleet's plan with its own
vars and ledger, `concurrency` of them at once, wave after wave.

- Every instance's plan is validated before any instance starts: a fleet with one bad instance
  sends nothing to Google.
- Waves run in order (apply lowest first, destroy highest first); a wave with a failure stops
  the ones after it, which are reported not started, as a canary would want.
- Instances share the locks of Google's one-operation-at-a-time parents through the fleet's
  space (space.py), so an organization never has two operations at once across instances, nor
  across runners.
- A runner given a shard runs its slice; with a run id (Cloud Run's CLOUD_RUN_EXECUTION, which
  all tasks of one execution share), it starts a wave only once every earlier-wave instance of
  the whole fleet has finished in that run, reading the others' status records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.engine.events import Event
from orchestrator.fleet.model import Fleet, Instance
from orchestrator.fleet.space import Space
from orchestrator.plan import PlanError, load_plan
from orchestrator.plan.errors import Diagnostic

COMMANDS = ("plan", "apply", "destroy")
DONE = {"plan": "planned", "apply": "applied", "destroy": "destroyed"}
BARRIER_POLL = 10.0  # seconds between reads of the other runners' status records
BARRIER_WAIT = 6 * 3600.0


@dataclass
class InstanceResult:
    name: str
    wave: int
    status: str  # planned | applied | destroyed | failed | not started
    steps_done: int = 0
    steps: int = 0
    elapsed: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed" and self.status != "not started"


@dataclass
class FleetResult:
    command: str
    instances: list[InstanceResult]
    wall: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.instances)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.instances:
            out[r.status] = out.get(r.status, 0) + 1
        return out


def validate(fleet: Fleet, instances: tuple[Instance, ...]) -> None:
    """Every chosen instance's plan, with its vars; raises PlanError naming the instances."""
    found: list[Diagnostic] = []
    for inst in instances:
        try:
            load_plan(fleet.plan, inst.vars, ())
        except PlanError as exc:
            found += [Diagnostic(d.file, d.line, d.col, d.field,
                                 f"(instance {inst.name}) {d.message}") for d in exc.diagnostics]
    if found:
        raise PlanError(found)


class Runner:
    """emulator: as orchestrator.load takes it (None for Google, an Emulator this process
    runs, or an emulator's URL); clock: the fleet's own (status times, barrier polls), on the
    same time as the instances'; storage: a storage client for a gs:// space."""

    def __init__(self, fleet: Fleet, *, emulator: Any, clock: Any,
                 storage: Callable[[], Any] | None = None, concurrency: int | None = None,
                 state_dir: Path | None = None, run_id: str = "",
                 on_result: Callable[[InstanceResult], None] | None = None) -> None:
        self.fleet = fleet
        self.emulator = emulator
        self.clock = clock
        self.space = Space(fleet.state, storage)
        self.concurrency = concurrency or fleet.concurrency
        self.state_dir = state_dir or Path(".provision")
        self.run_id = run_id
        self.on_result = on_result

    def run(self, command: str, shard: tuple[int, int] | None = None,
            validated: bool = False) -> FleetResult:
        """validated: the caller has validated the chosen instances (see `validate`)."""
        chosen = self.fleet.shard(*shard) if shard else self.fleet.instances
        if not validated:
            validate(self.fleet, chosen)
        began = self.clock.now()
        waves = self.fleet.waves(chosen)
        if command == "destroy":
            waves.reverse()
        results: list[InstanceResult] = []
        stopped = ""  # why the waves left are not started
        for wave in waves:
            if not stopped and shard and self.run_id:
                stopped = self._others_done(command, wave[0].wave)
            if stopped:
                for inst in wave:
                    result = InstanceResult(inst.name, inst.wave, "not started",
                                            message=stopped)
                    # Recorded, so that `fleet status` does not show an earlier run's record
                    # as this one's.
                    self._status(self.space, inst, command, "not started", time.time(),
                                 result)
                    results.append(self._report(result))
                continue
            done = self._wave(command, wave)
            results += done
            if command != "plan" and not all(r.ok for r in done):
                stopped = "an earlier wave failed"
        return FleetResult(command, results, self.clock.now() - began)

    def _wave(self, command: str, wave: list[Instance]) -> list[InstanceResult]:
        """The wave's instances, `concurrency` at a time. On a simulated clock no moment passes
        with nobody at work between one instance ending and the next starting: each starts
        with a token of the fleet's clock, given back once its own clock holds one, and hands
        one over as it ends (as the scheduler does for steps)."""
        out: dict[str, InstanceResult] = {}
        pending = list(wave)
        handed: list[Any] = []
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="instance") as pool:
            running: set[Future[tuple[InstanceResult, Any]]] = set()
            while pending or running:
                while pending and len(running) < self.concurrency:
                    running.add(pool.submit(self._instance, command, pending.pop(0),
                                            self.clock.grant()))
                while handed:
                    self.clock.retire(handed.pop())
                with self.clock.idle():
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    result, token = fut.result()
                    out[result.name] = result
                    handed.append(token)
            while handed:
                self.clock.retire(handed.pop())
        return [out[i.name] for i in wave]

    def _instance(self, command: str, inst: Instance, token: Any) -> tuple[InstanceResult, Any]:
        """One instance's run; `token` (of the fleet's clock) is held until the instance's own
        clock holds one, and a token is handed back with the result."""
        import orchestrator

        result = InstanceResult(inst.name, inst.wave, "failed")
        finished: list[str] = []
        lock = threading.Lock()

        def count(event: Event) -> None:
            if event.type == "step_finished" and event.step:
                with lock:
                    finished.append(event.step)

        started = time.time()
        try:
            dep = orchestrator.load(
                self.fleet.plan, vars=inst.vars, ledger=inst.ledger, emulator=self.emulator,
                on_event=count, state_dir=self.state_dir)
        except Exception as exc:  # a ledger or credentials problem of this instance alone
            result.message = str(exc)
            return self._report(result), token
        with dep, dep.clock.busy():
            self.clock.retire(token)
            # The instance's own clients and clock: its thread holds that clock's token.
            space = Space(self.fleet.state, dep.clients.storage)
            dep.shared_locks = space.locks(dep.clock, inst.name)
            result.steps = len(dep.plan.steps) if command != "plan" else 0
            self._status(space, inst, command, "running", started)
            since = dep.clock.now()
            try:
                if command == "plan":
                    preview = dep.plan_changes()
                    result.status, result.message = "planned", preview.summary
                else:
                    run = dep.apply() if command == "apply" else dep.destroy()
                    if run.ok:
                        result.status = DONE[command]
                    else:
                        result.message = "; ".join(f"{f.step}: {f.message}"
                                                   for f in run.failures)[:500]
            except Exception as exc:  # the instance's own failure: the others go on
                result.message = f"{type(exc).__name__}: {exc}"[:500]
            result.elapsed = dep.clock.now() - since
            result.steps_done = len(set(finished))
            self._status(space, inst, command, result.status, started, result)
            handover = self.clock.grant()
        return self._report(result), handover

    def _report(self, result: InstanceResult) -> InstanceResult:
        if self.on_result:
            self.on_result(result)
        return result

    def _status(self, space: Space, inst: Instance, command: str, state: str, started: float,
                result: InstanceResult | None = None) -> None:
        record: dict[str, Any] = {
            "instance": inst.name, "wave": inst.wave, "command": command, "state": state,
            "run": self.run_id, "started": started, "ledger": inst.ledger,
        }
        if result is not None:
            record.update(steps=result.steps, steps_done=result.steps_done,
                          elapsed=result.elapsed, message=result.message)
        space.write_status(inst.name, record)

    def _others_done(self, command: str, wave: int) -> str:
        """Wait until every instance of the fleet in an earlier wave (for destroy, a later
        one) has finished this run; "" then, else why this wave cannot start."""
        earlier = [i for i in self.fleet.instances
                   if (i.wave < wave if command != "destroy" else i.wave > wave)]
        deadline = self.clock.now() + BARRIER_WAIT
        while True:
            states = [(self.space.read_status(i.name) or {}) for i in earlier]
            mine = [s for s in states if s.get("run") == self.run_id
                    and s.get("command") == command]
            # A "not started" record is waited on as a missing one: the runner's retry (a
            # Cloud Run task's next attempt, in the same run) may yet run the instance.
            if any(s.get("state") == "failed" for s in mine):
                return "an earlier wave failed"
            if len(mine) == len(earlier) and all(s.get("state") == DONE[command] for s in mine):
                return ""
            if self.clock.now() >= deadline:
                return (f"the earlier waves' instances did not all finish in run "
                        f"{self.run_id} within {BARRIER_WAIT:,.0f} s")
            self.clock.sleep(BARRIER_POLL)
