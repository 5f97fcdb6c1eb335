"""Plan, apply and destroy: the engine's three walks over a plan and its ledger.

Every mutating call is bracketed by ledger writes (write-ahead): the intent, with the request
id a retried insert reuses, before the call; the operation name right after it returns; the
outcome once the operation is done. A run killed at any moment therefore resumes by polling
what it recorded, never by creating again.
"""

from __future__ import annotations

import functools
import heapq
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from graphlib import TopologicalSorter
from typing import Any

from orchestrator.engine import ownership, preflight
from orchestrator.engine.events import Event, EventCallback
from orchestrator.engine.planning import Planning
from orchestrator.engine.recovery import RecoveryCommands
from orchestrator.engine.results import Preview, RunResult, StepChange, StepFailure
from orchestrator.engine.scheduler import run_graph
from orchestrator.engine.steps import (
    InvalidRequest,
    MissingOutput,
    Resolved,
    StepError,
    Unknown,
    kind_named,
    output_at,
    resolve_step,
    target_of,
)
from orchestrator.gcp import retry
from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.clock import Clock, WallClock
from orchestrator.gcp.errors import ApiError, DeadlineExceeded, OperationError
from orchestrator.gcp.operations import FIRST_POLL, MAX_POLL, WAIT, OperationRef, Waiter
from orchestrator.kinds.adapter import ElementChange, Target
from orchestrator.kinds.base import Kind, NotReady
from orchestrator.ledger import Operation, ResourceRecord, keyed_fingerprint
from orchestrator.ledger.model import Replaced, now

LOG = logging.getLogger("provision.engine")

# Simulated seconds a create answered "already exists" may take to read back (Google's own
# consistency lag) before the conflict is taken to be with something else.
CONFLICT_GRACE = 120.0
# Simulated seconds a read outside the steps (the permission preflight's) may take, retries
# included.
ASK_DEADLINE = 300.0
_REQUEST_NAMESPACE = uuid.UUID("5f2b8c1e-7c4d-4d8e-9a57-3c9e0b7c2a10")




@dataclass
class Engine(Planning, RecoveryCommands):
    """Runs one plan against one ledger store with one set of clients."""

    plan: Any
    store: Any
    clients: ClientFactory
    clock: Clock = field(default_factory=WallClock)
    parallelism: int = 8
    on_event: EventCallback | None = None
    access_secret: Callable[[str], str] | None = None
    poll: str = WAIT  # how operations are awaited: see Waiter
    # Whether a step waits for its kind's readiness (a tunnel ESTABLISHED) after its operation.
    readiness: bool = True
    # The threads that run the steps, when the caller keeps them (and the clients each has
    # built) from one run to the next; by default each walk starts its own.
    workers: Executor | None = None
    # Steps to plan, apply or destroy alone (with what they need, or for destroy, what needs
    # them); empty for all. Not for routine use: the rest is left as it is, unchecked.
    targets: frozenset[str] = frozenset()
    # Whether plan, apply and destroy first ask Google whether the caller holds the
    # permissions their changes need (see engine/preflight.py).
    check_permissions: bool = True
    # Locks shared with other runs (a fleet's instances, fleet/space.py), by the same keys as a
    # kind's `serialize`: held inside this run's own, so that one organization or router has
    # one operation at a time across runs too.
    shared_locks: Callable[[str], AbstractContextManager[None]] | None = None

    def __post_init__(self) -> None:
        self.permission_check = preflight.Checker(self.clients, self._ask) if (
            self.check_permissions) else None
        self._lock = threading.RLock()
        self._locks: dict[str, Any] = {}
        # Changes queued for a batched parent (a router's interfaces and peers), by lock key.
        self._queued: dict[str, list[_Queued]] = {}
        self._ledger: Any = None
        self._run: Any = None
        self._secrets: dict[str, str] = {}
        self._waiter = Waiter(self.clients, self.clock, on_poll=self._on_poll, poll=self.poll,
                              stream=lambda: _current_step() or "")
        self._polls: dict[str, int] = {}
        # What the last plan read of each step: (resolution, live, whether it had unknowns).
        self._plan_live: dict[str, tuple[Resolved, dict[str, Any] | None, bool]] = {}
        self._moved: list[tuple[str, str]] = []
        self._said: set[str] = set()  # the permission check's notes, said once a run

    # --- events -----------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if event.message and self._secrets:
            event = replace(event, message=self._redact(event.message))
        level = logging.DEBUG if event.type == "step_progress" else logging.INFO
        if LOG.isEnabledFor(level):
            LOG.log(level, "%s", _logged(event))
        if self._run is not None and event.type != "step_progress":
            with self._lock:
                self._run.events.append(event.to_json())
        if self.on_event:
            self.on_event(event)

    def _interrupted(self, under_way: int) -> None:
        self._emit(Event("diagnostic", message=(
            f"interrupted: nothing new starts; what is under way ({under_way} "
            f"step{'s' * (under_way != 1)}) finishes and is recorded. Ctrl-C again to stop at "
            "once (the next run resumes what is under way)."
        )))

    def _on_poll(self, op: OperationRef, state: dict[str, Any]) -> None:
        step = _current_step()
        if step:
            with self._lock:
                self._polls[step] = self._polls.get(step, 0) + 1
            self._emit(
                Event(
                    "step_progress", step=step, message=state.get("status", "")
                    or ("done" if state.get("done") else "running"),
                    data={"operation": op.name, "polls": self._polls[step]},
                )
            )

    # --- ledger -------------------------------------------------------------------------------

    def _save(self, *steps: str) -> None:
        """Make the records of `steps` durable, or with none the whole ledger. Staged under the
        engine lock, so that nothing changes the ledger while it is encoded; awaited outside
        it, so that the saves other steps make meanwhile join the same write."""
        with self._lock:
            staged = self.store.stage(self._ledger, steps or None)
        staged.wait()

    def _outputs(self, step_id: str) -> dict[str, Any] | None:
        rec = self._ledger.resources.get(step_id) if self._ledger else None
        if rec is None or rec.status != "present":
            return None
        return rec.outputs

    def _lookup(self, ref: Any) -> Any:
        """A reference's value from the ledger (a secret's, resolved), or Unknown."""
        if ref.scope == "secrets":
            return self._secret(ref.target)
        outputs = self._outputs(ref.target)
        if outputs is None:
            return Unknown(ref.text)
        try:
            return output_at(outputs, ref.path)
        except MissingOutput as missing:
            raise StepError(
                f"{ref.text}: step {ref.target!r} has no output {missing.args[0]!r}"
            ) from None

    def _secret(self, name: str) -> str:
        with self._lock:
            if name not in self._secrets:
                from orchestrator.plan.secrets import resolve_secret

                self._secrets[name] = resolve_secret(
                    self.plan.secrets[name], access_secret_version=self.access_secret
                )
            return self._secrets[name]

    def _redact(self, text: str) -> str:
        """The text with every secret value this run resolved replaced by its name: Google
        quotes a value it refuses back in its error, secrets included."""
        with self._lock:
            secrets = dict(self._secrets)
        for name, value in secrets.items():
            if value:
                text = text.replace(value, f"[secret {name}]")
        return text

    def _check_secrets(self) -> None:
        """Resolve the plan's environment and file secrets before the first request: one that
        is missing is wrong input, not a failure halfway through an apply. (Secret Manager
        versions are read when a step needs them: that is a request of its own.)"""
        from orchestrator.plan.secrets import SecretError

        for name, ref in self.plan.secrets.items():
            if ref.source == "secret_manager":
                continue
            try:
                self._secret(name)
            except SecretError as exc:
                where = self.plan.position(f"secrets.{name}")
                raise SecretError(f"{where}: {exc}") from None

    def _fingerprint_secret(self, value: str) -> str:
        return keyed_fingerprint(value, self._key())

    def _key(self) -> bytes:
        with self._lock:
            if not hasattr(self, "_fingerprint_key"):
                self._fingerprint_key = self.store.fingerprint_key()
            return self._fingerprint_key

    def _load(self) -> None:
        self._ledger = self.store.load()
        if self.plan is not None:
            self._ledger.plan = self._ledger.plan or self.plan.name

    def _ensure(self, step_id: str, kind: Kind, path: str) -> ResourceRecord:
        rec = self._ledger.resources.get(step_id)
        if rec is None:
            rec = self._ledger.resources[step_id] = ResourceRecord(step_id, kind.name, path)
        return rec

    def _resolve(self, step: Any) -> tuple[Kind, Resolved]:
        kind = kind_named(step.kind)
        return kind, resolve_step(step, kind, self._lookup, self._fingerprint_secret)

    # --- apply --------------------------------------------------------------------------------

    def apply(self, command: str = "apply", approved: Preview | None = None) -> RunResult:
        """Do what the plan says, as it says it. `approved`: the plan a person saw and agreed
        to; when what the ledger and the cloud say now plans otherwise, nothing is done."""
        self._check_secrets()
        with self._locked(command):
            self._load()
            preview = self._plan()
            if approved is not None:
                _check_approved(approved, preview)
            self._start_run(command, reload=False)
            for old, new in self._moved:
                self._run.act(new, f"moved from {old}", "ok")
            result = RunResult(command=command, run_id=str(self._run.id))
            started = self.clock.now()
            self._carry_out(preview, result)
            result.outputs = self._all_outputs()
            result.elapsed = self.clock.now() - started
            self._finish(result)
            return result

    def _carry_out(self, preview: Preview, result: RunResult) -> None:
        """One graph of the plan's deletions and the steps' applies: a resource goes after
        every resource that goes and depends on it, and before its replacement is made; what
        a removed resource's users are updated to goes first (see `_graph`)."""
        changes = {c.step: c for c in preview.steps}
        nodes, deps, order = self._graph(preview)

        def task(node: str) -> None:
            step_id, phase = nodes[node]
            threading.current_thread().__dict__["provision_step"] = step_id
            try:
                if phase == "delete":
                    self._remove_step(step_id, changes[step_id], result)
                else:
                    action = self._apply_step(self.plan.step(step_id), changes[step_id])
                    with self._lock:
                        result.actions[step_id] = action
            except Exception as exc:
                self._fail(step_id, exc, result)
                raise
            finally:
                threading.current_thread().__dict__.pop("provision_step", None)

        def on_skip(node: str, cause: str) -> None:
            step_id = nodes[node][0]
            if nodes[node][1] == "apply" or changes[step_id].action != "replace":
                self._emit(Event("step_skipped", step=step_id,
                                 message=f"needs {nodes[cause][0]}"))

        outcome = run_graph(
            order, deps, task, parallelism=self.parallelism, on_skip=on_skip,
            workers=self.workers, clock=self.clock, on_interrupt=self._interrupted,
        )
        for node, cause in outcome.skipped.items():
            result.skipped.setdefault(nodes[node][0], nodes[cause][0])
        result.cancelled = list(dict.fromkeys(nodes[n][0] for n in outcome.cancelled))

    def _graph(
        self, preview: Preview
    ) -> tuple[dict[str, tuple[str, str]], dict[str, set[str]], list[str]]:
        """The nodes (step, "delete" or "apply"), their dependencies and an order that respects
        them, deletions first, each phase in the plan's order (repeated steps taking turns by
        key: Plan.start_order)."""
        changes = {c.step: c for c in preview.steps}
        going = [c.step for c in preview.steps if c.action in ("replace", "delete", "leave")]
        removed = {c.step for c in preview.steps if c.action in ("delete", "leave")}
        steps = sorted((self.plan.step(c.step) for c in preview.steps if c.step not in removed),
                       key=lambda s: self.plan.start_order[s.id])
        nodes = {f"{sid}\0delete": (sid, "delete") for sid in reversed(going)}
        nodes.update({s.id: (s.id, "apply") for s in steps})
        deps: dict[str, set[str]] = {n: set() for n in nodes}

        def needs(sid: str) -> set[str]:
            """What a resource that goes depends on as it exists: as recorded."""
            rec = self._ledger.resources.get(sid)
            if rec is not None:
                return set(rec.depends_on)
            return set(self.plan.step(sid).deps) if sid not in removed else set()

        for sid in going:
            for user in going:
                if sid in needs(user):
                    deps[f"{sid}\0delete"].add(f"{user}\0delete")
        for step in steps:
            deps[step.id] |= set(step.deps)
            if step.id in changes and changes[step.id].action == "replace":
                deps[step.id].add(f"{step.id}\0delete")
            rec = self._ledger.resources.get(step.id)
            for sid in removed:
                if changes[step.id].action == "update" and rec and sid in rec.depends_on:
                    # Updated to let go of it first.
                    deps[f"{sid}\0delete"].add(step.id)
        # Where it closes no cycle, a new resource is made after what is removed is gone: it
        # may need a name or a range the removed one holds.
        for step in steps:
            if changes[step.id].action in ("create", "replace"):
                for sid in removed:
                    if not _reaches(deps, f"{sid}\0delete", step.id):
                        deps[step.id].add(f"{sid}\0delete")
        return nodes, deps, _stable_order(list(nodes), deps)

    def _remove_step(self, step_id: str, planned: StepChange, result: RunResult) -> None:
        """The deletion half of a replace or a move, or a removed step's deletion. A replaced
        step may have no record: one found live and taken over by this plan."""
        rec = self._ledger.resources.get(step_id)
        kind = kind_named(planned.kind)
        target = (target_of(kind, rec.path, rec.spec) if rec is not None
                  else self._plan_live[step_id][0].target)
        started = self.clock.now()
        deadline = started + kind.timeout
        self._emit(Event("step_started", step=step_id, kind=kind.name, action=planned.action,
                         resource=planned.resource,
                         data={"changes": [c.field for c in planned.changes]}))
        if rec is not None and rec.operation and rec.operation.name:
            self._await_recorded(kind, rec, deadline)
        if rec is not None and _deleted_for(self._ledger.resources.get(step_id), planned.action):
            pass  # its recorded delete finished
        elif planned.action == "leave":
            self._forget(step_id)
        else:
            if planned.action == "replace":
                self._keep_original(step_id)
            self._delete(kind, step_id, target, deadline,
                         replacing=planned.action == "replace")
        if planned.action != "replace":
            with self._lock:
                result.actions[step_id] = planned.action
            self._emit(Event("step_finished", step=step_id, kind=kind.name,
                             action=planned.action, resource=target.path,
                             message=kind.left_on_destroy if planned.action == "leave" else "",
                             data={"elapsed": round(self.clock.now() - started, 3)}))

    def _apply_step(self, step: Any, planned: StepChange) -> str:
        kind, res = self._resolve(step)
        if res.unknown:
            raise StepError("a referenced step has no outputs (it did not complete)")
        deadline = self.clock.now() + (step.timeout or kind.timeout)
        rec = self._ledger.resources.get(step.id)
        seen, seen_live, seen_unknown = self._plan_live.get(step.id, (None, None, True))
        if (planned.action == "noop" and not seen_unknown and seen is not None
                and seen.fingerprint == res.fingerprint and rec is not None
                and rec.status == "present"):
            # As the plan read it a moment ago, under the same lock: no second read.
            self._record_present(step.id, step.deps, kind, res, seen_live or {}, origin=None)
            return "noop"
        if rec is not None and rec.operation and rec.operation.name:
            self._emit(Event("step_progress", step=step.id, message="resuming recorded operation"))
            self._await_recorded(kind, rec, deadline)
        rec = self._ledger.resources.get(step.id)
        if rec is not None and rec.path != res.target.path and planned.previous == rec.path and (
                kind.left_on_destroy):
            self._forget(step.id)  # moved: the old one is its project's, left as it is
        live = self._read(kind, res.target, deadline)
        rec = self._ledger.resources.get(step.id)
        if (rec is not None and rec.status in ("present", "gone") and rec.path != res.target.path
                and not (rec.status == "gone" and planned.previous == rec.path)):
            raise StepError(
                f"the ledger records this step at {rec.path}, not {res.target.path}, and the "
                "plan did not move it: run provision plan again"
            )
        # A create whose outcome was never recorded (the run stopped after the call, or
        # before it): what is live may be its result. An interrupted update is not one of
        # these: it is diffed and done again.
        pending_create = (
            rec is not None
            and rec.status == "pending"
            and rec.path == res.target.path
            and (rec.operation is None or rec.operation.action == "create")
        )
        unowned = rec is None or rec.status == "gone"  # a gone record owns nothing live
        if live is not None and (unowned or pending_create) and not kind.adopts_live:
            self._check_owner(step, kind, res, live, recorded_intent=pending_create)
        if pending_create and live is not None and rec.fingerprint != res.fingerprint:
            # That create was sent for an older plan (it never became ready, say, for a
            # shared secret the other side did not share): what is live is this step's, made
            # to the old spec. Compare it as any recorded resource, so the fix is applied.
            with self._lock:
                rec.status, rec.operation = "present", None
            pending_create = False
        not_ready = kind.ready(live) if kind.ready is not None and live is not None else None
        decision = self._decide(step, kind, res, live) if not pending_create else None
        action = "create" if decision is None else decision.action
        if action == "replace" and planned.action != "replace":
            fields = ", ".join(c.field for c in decision.changes)
            raise StepError(
                f"{fields} of {res.target.path} differs from what the plan saw and cannot "
                "change in place; the plan kept this resource, so apply does not replace it. "
                "Run provision plan again to see the replacement."
            )
        reported = "replace" if planned.action == "replace" and action != "noop" else action
        if action != "noop" and planned.action != "replace":
            self._emit(
                Event(
                    "step_started", step=step.id, kind=kind.name, action=reported,
                    resource=res.target.path,
                    data={"changes": [c.field for c in decision.changes]} if decision else {},
                )
            )
        started = self.clock.now()
        if action == "noop":
            adopted = rec is None and live is not None
            self._record_present(step.id, step.deps, kind, res, live or {},
                                 origin="adopted" if adopted else None)
        elif action == "create" and pending_create and live is not None and (
            not_ready is None or not_ready.underway
        ):
            # Our own create from a run that stopped before recording its outcome, done or on
            # its way (a proxy's deployment PROGRESSING: asking again would deploy a second
            # revision). Not yet asked for, e.g. a proxy imported but not deployed: the create
            # is done again.
            if not_ready is not None:
                live = self._await_ready(kind, res.target, deadline)
            self._record_present(step.id, step.deps, kind, res, live, origin="created")
        elif action == "create":
            self._create(step, kind, res, deadline)
        elif action == "update":
            self._update(step, kind, res, live or {}, deadline,
                         origin="adopted" if rec is None else None)
        else:  # replace: planned, and its deletion has not happened (a resumed run)
            if rec is None or rec.status != "gone":
                # What is deleted is the recorded resource, where it is recorded.
                old = target_of(kind, rec.path, rec.spec) if rec is not None else res.target
                self._keep_original(step.id)
                self._delete(kind, step.id, old, deadline, replacing=True)
            self._create(step, kind, res, deadline)
        if action != "noop" or planned.action == "replace":
            self._emit(
                Event(
                    "step_finished", step=step.id, kind=kind.name, action=reported,
                    resource=res.target.path,
                    data={"elapsed": round(self.clock.now() - started, 3),
                          "polls": self._polls.get(step.id, 0)},
                )
            )
        return reported

    def _check_owner(
        self, step: Any, kind: Kind, res: Resolved, live: dict[str, Any], recorded_intent: bool
    ) -> None:
        """Refuse a live resource this ledger did not make. Without a marker field (some APIs
        have neither labels nor description) the recorded intent is the only evidence."""
        if ownership.is_ours(kind, live, self._ledger.lineage, step.id):
            return
        if recorded_intent and ownership.marker_field(kind) is None:
            return
        raise StepError(
            f"{res.target.path} already exists and this ledger does not own it. To manage it "
            f"with this plan, run: provision import {self.plan.path} {step.id} {res.target.path}"
        )

    def _read(self, kind: Kind, target: Target, deadline: float) -> dict[str, Any] | None:
        return retry.call(
            lambda: kind.adapter.read(self.clients, target),
            deadline=deadline, clock=self.clock, stream=_current_step() or "",
        )

    def _await_ready(
        self, kind: Kind, target: Target, deadline: float, conflict: ApiError | None = None,
    ) -> dict[str, Any]:
        """Read the resource back, and for kinds that declare readiness, until it is ready.
        conflict: the create was answered "already exists": if nothing reads back at the path
        for a while, what exists is something else Google will not have twice (Apigee's one
        endpoint attachment per service attachment), and Google's words say what."""
        interval = FIRST_POLL
        started = self.clock.now()
        while True:
            live = self._read(kind, target, deadline)
            if live is not None and kind.settle is not None:
                settling = self._call(
                    functools.partial(kind.settle, self.clients, target, live), deadline)
                if settling is not None:
                    self._wait(settling, deadline)
                    continue
            if live is None and conflict is not None and (
                    self.clock.now() - started >= CONFLICT_GRACE):
                raise StepError(
                    f"Google refused the create ({conflict}), and nothing is at {target.path}: "
                    "what exists is another resource Google will not have beside this one"
                )
            if live is None:
                # Eventual consistency: a resource just made may read 404 for a moment.
                reason = NotReady(f"{target.path} was created but does not read back yet")
            else:
                reason = kind.ready(live) if kind.ready and self.readiness else None
                if reason is None:
                    return live
            if reason.final:
                raise StepError(reason.message)
            if self.clock.now() + interval > deadline:
                raise DeadlineExceeded(f"not ready at the step's deadline: {reason.message}")
            self._emit(Event("step_progress", step=_current_step(), message=reason.message))
            self.clock.sleep(interval)
            interval = min(interval * 2, MAX_POLL)

    @contextmanager
    def _serialized(self, kind: Kind, target: Target, deadline: float) -> Iterator[float]:
        """Hold the lock of a kind's "one operation at a time" parent, if it has one. Time spent
        queueing behind another step's operation is not the step's own: the deadline it
        yields is pushed back by it."""
        if not kind.serialize:
            yield deadline
            return
        key = kind.serialize.format(name=target.name, **target.scope)
        with self._lock:
            lock = self._locks.setdefault(key, self.clock.lock())
        queued = self.clock.now()
        with lock, (self.shared_locks(key) if self.shared_locks else nullcontext()):
            yield deadline + (self.clock.now() - queued)

    def _write_batched(
        self, step_id: str, kind: Kind, target: Target, action: str, body: dict[str, Any],
        deadline: float, request_id: str = "",
    ) -> tuple[OperationRef | None, float]:
        """A change to an element of a batched parent (a router's interface or peer): queued,
        then written under the parent's lock by whichever step takes it first, in one call with
        every change queued by then (each step's record gets the operation before it is waited
        for). A step whose change was written by another finds it done when its turn comes.
        Google refusing a batch of several, the writer writes its own change alone and the
        others go back to the front of the queue, so only a bad change's step fails. A write
        whose wait ran out of time may still land: its changes are not written again.
        Returns the operation and the deadline, pushed back by the time queued for the lock."""
        key = kind.serialize.format(name=target.name, **target.scope)  # type: ignore[union-attr]
        mine = _Queued(step_id, ElementChange(kind.adapter, action, target, body))
        with self._lock:
            self._queued.setdefault(key, []).append(mine)
        with self._serialized(kind, target, deadline) as deadline:
            if mine.written:
                return mine.op, deadline
            with self._lock:
                batch = self._queued.pop(key, [])
            try:
                op = self._write_changes(kind, batch, request_id, deadline)
            except BaseException as exc:
                others = [q for q in batch if q is not mine and not q.written]
                with self._lock:
                    self._queued[key] = others + self._queued.get(key, [])
                if not others or not isinstance(exc, (ApiError, OperationError)):
                    raise
                batch = [mine]  # refused together: this step's change alone
                op = self._write_changes(kind, batch, request_id, deadline)
            if len(batch) > 1:
                self._emit(Event("step_progress", step=step_id, message=(
                    f"{len(batch)} changes to {kind.adapter.parent(target)} in one write")))
            return op, deadline

    def _write_changes(self, kind: Kind, batch: list[_Queued], request_id: str,
                       deadline: float) -> OperationRef | None:
        """One write of the batch's changes, waited for; each change marked written once its
        write is sent and either done or no longer known not to land."""
        rid = request_id if len(batch) == 1 and request_id else str(uuid.uuid4())
        op = self._call(
            lambda: kind.adapter.write_batch(  # type: ignore[attr-defined]
                self.clients, [q.change for q in batch], rid),
            deadline, retry_if=_lost_race,
        )
        if op is not None:
            for queued in batch:
                self._record_operation(queued.step_id, op)
            try:
                self._wait(op, deadline)
            except DeadlineExceeded:
                for queued in batch:  # still running at Google: written, not to be sent again
                    queued.written, queued.op = True, op
                raise
        for queued in batch:
            queued.written, queued.op = True, op
        return op

    def _create(self, step: Any, kind: Kind, res: Resolved, deadline: float) -> None:
        rec = self._ledger.resources.get(step.id)
        intent = rec.operation if rec is not None and rec.operation else None
        # A retried insert with the recorded request id returns the first one's operation.
        request_id = (intent.request_id if intent else "") or str(
            uuid.uuid5(_REQUEST_NAMESPACE, f"{self._ledger.lineage}/{step.id}/{uuid.uuid4()}")
        )
        with self._lock:
            rec = self._ensure(step.id, kind, res.target.path)
            rec.kind, rec.path, rec.status, rec.error = kind.name, res.target.path, "pending", None
            # What this create sends, so a resume can tell whether the plan changed since.
            rec.spec, rec.fingerprint = res.spec, res.fingerprint
            rec.operation = Operation("", kind.api, "create", now(), request_id=request_id)
            rec.created_run = self._run.id
            rec.depends_on = sorted(step.deps)
        self._save(step.id)
        conflicts: list[ApiError] = []
        body = ownership.mark(kind, res.body, self._ledger.lineage, step.id)
        if _batched(kind):
            op, deadline = self._write_batched(step.id, kind, res.target, "create", body,
                                               deadline, request_id)
        else:
            with self._serialized(kind, res.target, deadline) as deadline:
                op = self._call(
                    lambda: kind.adapter.create(self.clients, res.target, body, request_id),
                    deadline, conflicts=conflicts, retry_if=_lost_race,
                )
                if op is not None:
                    self._record_operation(step.id, op)
                    self._wait(op, deadline)
        live = self._await_ready(kind, res.target, deadline,
                                 conflict=conflicts[0] if conflicts else None)
        if op is None:
            # The create met an existing resource (409) or answered synchronously: make sure
            # what is there is the one this step made.
            self._check_owner(step, kind, res, live, recorded_intent=True)
        self._record_present(step.id, step.deps, kind, res, live, origin="created")

    def _update(
        self, step: Any, kind: Kind, res: Resolved, live: dict[str, Any], deadline: float,
        origin: str | None,
    ) -> None:
        self._update_resource(step.id, step.deps, kind, res, live, deadline, origin)

    def _update_resource(
        self, step_id: str, deps: Any, kind: Kind, res: Resolved, live: dict[str, Any],
        deadline: float, origin: str | None = None, restoring: bool = False,
    ) -> None:
        """restoring: a rollback's update, whose target value is the recorded previous_spec;
        it stays recorded until the restore is done, so that a rollback stopped halfway
        restores the same values when run again."""
        with self._lock:
            rec = self._ensure(step_id, kind, res.target.path)
            if not restoring:
                rec.previous_spec = rec.spec
            rec.status = "pending"
            rec.operation = Operation("", kind.api, "update", now())
        self._save(step_id)
        body = res.body
        if ownership.marker_field(kind) == "description":
            body = ownership.mark(kind, body, self._ledger.lineage, step_id)
        if _batched(kind):
            _, deadline = self._write_batched(step_id, kind, res.target, "update", body,
                                              deadline)
        else:
            with self._serialized(kind, res.target, deadline) as deadline:
                op = self._call(
                    lambda: kind.adapter.update(self.clients, res.target, body, live), deadline
                )
                if op is not None:
                    self._record_operation(step_id, op)
                    self._wait(op, deadline)
        fresh = self._await_ready(kind, res.target, deadline)
        with self._lock:
            self._ensure(step_id, kind, res.target.path).updated_run = self._run.id
        self._record_present(step_id, deps, kind, res, fresh, origin=origin)

    def _delete(
        self, kind: Kind, step_id: str, target: Target, deadline: float, replacing: bool = False,
    ) -> bool:
        """Delete a resource and drop its record; replacing: the deletion half of a replace,
        whose record stays, `gone`, for the create that follows. False when Google said there
        was nothing to delete (a create whose operation failed, a resource deleted outside)."""
        with self._lock:
            rec = self._ledger.resources.get(step_id)
            if rec is not None:
                rec.status = "deleting"
                rec.operation = Operation("", kind.api, "replace" if replacing else "delete",
                                          now())
        self._save(step_id)
        def blocked(message: str) -> bool:
            return any(fragment in message for fragment in kind.delete_blockers)

        if _batched(kind):
            self._write_batched(step_id, kind, target, "delete", {}, deadline)
            if replacing:
                self._deleted_for_replace(step_id)
            else:
                self._forget(step_id)
            return True
        absent = False
        with self._serialized(kind, target, deadline) as deadline:
            if kind.prepare_delete is not None:
                preparing = self._call(
                    functools.partial(kind.prepare_delete, self.clients, target), deadline)
                if preparing is not None:
                    self._wait(preparing, deadline)
            interval = FIRST_POLL
            while True:
                try:
                    op = self._call(
                        lambda: kind.adapter.delete(self.clients, target), deadline,
                        # A dependent may still be on its way out (deleted in parallel, or by
                        # Google after its own delete): wait for it rather than fail at once.
                        retry_if=lambda e: e.reason == "resourceInUseByAnotherResource"
                        or blocked(e.message) or _lost_race(e),
                    )
                except ApiError as exc:
                    gone = any(fragment in exc.message for fragment in kind.gone_when)
                    if not (exc.not_found or gone):
                        raise
                    op, absent = None, True
                if op is None:
                    break
                self._record_operation(step_id, op)
                try:
                    self._wait(op, deadline)
                    break
                except OperationError as exc:
                    # Some blockers fail the delete's operation rather than the call
                    # (Service Networking's "still using this connection"): call again.
                    if not blocked(exc.message):
                        raise
                    if self.clock.now() + interval > deadline:
                        raise StepError(
                            f"{exc.message} Still so at the step's deadline: Google lets go of "
                            "it some time after its users are deleted; run the destroy again "
                            "later, or give the step a longer timeout."
                        ) from exc
                self._emit(Event("step_progress", step=step_id, message="delete blocked; retrying"))
                self.clock.sleep(interval)
                interval = min(interval * 2, MAX_POLL)
        if replacing:
            self._deleted_for_replace(step_id)
        else:
            self._forget(step_id)
        return not absent

    def _keep_original(self, step_id: str) -> None:
        """Keep the record of a resource about to be replaced in its record (saved with the
        deletion's intent), for a rollback to make it again; a deletion resumed keeps the
        original kept by the run that began it."""
        with self._lock:
            rec = self._ledger.resources.get(step_id)
            if rec is not None and rec.status == "present":
                # The originals of earlier replaces stay behind it, for the rollbacks of their
                # runs, as long as those runs are in the ledger's history.
                kept = {run.id for run in self._ledger.runs}
                rec.replaced = Replaced(self._run.id, replace(rec, replaced=_kept(rec.replaced,
                                                                                  kept)))

    def _deleted_for_replace(self, step_id: str) -> None:
        with self._lock:
            rec = self._ledger.resources.get(step_id)
            if rec is not None:
                rec.status, rec.operation, rec.error = "gone", None, None
        self._save(step_id)

    def _forget(self, step_id: str) -> None:
        """Drop a step's record, durably: its resource is gone, or is not the ledger's to keep."""
        with self._lock:
            self._ledger.resources.pop(step_id, None)
        self._save(step_id)

    def _call(
        self,
        fn: Callable[[], OperationRef | None],
        deadline: float,
        *,
        conflicts: list[ApiError] | None = None,
        retry_if: Callable[[ApiError], bool] | None = None,
    ) -> OperationRef | None:
        """conflicts: where a create's "already exists" goes, instead of raising it."""
        try:
            return retry.call(
                fn, deadline=deadline, clock=self.clock, stream=_current_step() or "",
                retry_if=retry_if,
            )
        except ApiError as exc:
            if conflicts is not None and exc.already_exists:
                # Our own create, already under way (a retried call after a lost response),
                # or someone else's resource: read-back decides.
                conflicts.append(exc)
                return None
            raise

    def _ask(self, fn: Callable[[], Any]) -> Any:
        """One read outside any step, under the retry policy (the permission preflight's)."""
        return retry.call(fn, deadline=self.clock.now() + ASK_DEADLINE, clock=self.clock,
                          stream="")

    def _wait(self, op: OperationRef, deadline: float) -> None:
        self._waiter.wait(op, deadline)

    def _record_operation(self, step_id: str, op: OperationRef) -> None:
        with self._lock:
            rec = self._ledger.resources.get(step_id)
            if rec is None:
                # The deletion of a resource taken over unrecorded: a killed run finds it, or
                # not, by reading, as it found it in the first place.
                return
            if rec.operation is None:
                rec.operation = Operation("", op.api, "create", now())
            rec.operation.name, rec.operation.ref = op.name, op.to_json()
            rec.status = "in_flight" if rec.status != "deleting" else "deleting"
        self._save(step_id)

    def _await_recorded(self, kind: Kind, rec: Any, deadline: float) -> None:
        failed = False
        try:
            self._wait(OperationRef.from_json(rec.operation.ref), deadline)
        except OperationError as exc:
            failed = True
            with self._lock:
                rec.error = self._redact(str(exc))
        with self._lock:
            action = rec.operation.action
            rec.operation = None
            if action in ("delete", "replace") and failed:
                rec.status = "deleting"  # still there: the caller deletes it again
            elif action == "delete":
                self._ledger.resources.pop(rec.step_id, None)
            elif action == "replace":
                rec.status, rec.error = "gone", None
            else:
                rec.status = "present" if action == "update" else "pending"
        self._save(rec.step_id)

    def _record_present(
        self, step_id: str, deps: Any, kind: Kind, res: Resolved, live: dict[str, Any],
        origin: str | None,
    ) -> None:
        outputs = {k: v for k, v in live.items() if k not in kind.secret_fields}
        outputs["path"] = res.target.path
        caveat = kind.caveat(live) if kind.caveat is not None and live else None
        if caveat:
            self._emit(Event("diagnostic", step=step_id, message=f"{step_id}: {caveat}",
                             data={"level": "warning"}))
        with self._lock:
            rec = self._ensure(step_id, kind, res.target.path)
            before = replace(rec)
            rec.kind, rec.path, rec.status = kind.name, res.target.path, "present"
            rec.spec, rec.fingerprint, rec.outputs = res.spec, res.fingerprint, outputs
            rec.operation, rec.error = None, None
            rec.depends_on = sorted(deps)
            if origin:
                rec.origin = origin
            changed = rec != before
        # A step found as recorded (a no-op re-apply) has nothing to make durable: writing
        # anyway would cost an fsync per step.
        if changed:
            self._save(step_id)

    def _fail(self, step_id: str, exc: BaseException, result: RunResult) -> None:
        message = self._redact(_describe(exc))
        with self._lock:
            rec = self._ledger.resources.get(step_id)
            # A removed step's deletion fails with no step in the plan: its record names it.
            in_plan = self.plan is not None and step_id in {s.id for s in self.plan.steps}
            step = self.plan.step(step_id) if in_plan else rec
            if rec is not None:
                rec.error = message
                refused = rec.status == "pending" and not (rec.operation and rec.operation.name)
                if refused and rec.operation and rec.operation.action == "update":
                    # Google refused the change: the resource is as it was.
                    rec.operation, rec.status = None, "present"
                elif refused:
                    rec.operation = None
                    rec.status = "failed"
            result.failures.append(
                StepFailure(step_id, step.kind if step else "", rec.path if rec else "", message)
            )
        self._save(step_id)
        self._emit(Event("step_failed", step=step_id, message=message))

    def _all_outputs(self) -> dict[str, dict[str, Any]]:
        return {
            sid: rec.outputs
            for sid, rec in self._ledger.resources.items()
            if rec.status == "present"
        }

    def _finish(self, result: RunResult) -> None:
        with self._lock:
            self._run.finish("succeeded" if result.ok else "failed")
            for step_id, action in result.actions.items():
                if action != "noop":
                    self._run.act(step_id, action, "ok")
            for failure in result.failures:
                self._run.act(failure.step, "", "failed")
        self._emit(
            Event("run_finished", message=self._run.result,
                  data={"elapsed": round(result.elapsed, 3)})
        )
        self._save()

    @contextmanager
    def _locked(self, command: str) -> Iterator[None]:
        """Hold the ledger's lock for a command; say so when it was left by a run that died.
        The command works on the clock throughout: on a virtual clock, simulated time moves only
        while it waits."""
        with self.clock.busy(), self.store.lock(command=command) as lock:
            stale = getattr(lock, "stale_previous", None)
            if stale is not None:
                then = ("this plan shows where it stopped" if command == "plan"
                        else "this run resumes its work")
                self._emit(Event("diagnostic", message=(
                    f"took over the ledger lock left by a run that is gone: {stale.describe()}; "
                    f"{then}"
                )))
            try:
                yield
            except Exception as exc:
                if self._redact(str(exc)) == str(exc):
                    raise
                # What reaches the caller's message (and traceback) carries no secret.
                raise StepError(self._redact(_describe(exc))) from None

    def _start_run(self, command: str, reload: bool = True) -> None:
        if reload:
            self._load()
        self._ledger.close_interrupted_runs()
        self._run = self._ledger.begin_run(command)
        self._emit(Event("run_started", message=command, data={"run": self._run.id}))
        self._save()

    # --- destroy ------------------------------------------------------------------------------

    def destroy(self, command: str = "destroy") -> RunResult:
        with self._locked(command):
            self._load()
            order = list(reversed(list(self._ledger.resources)))
            if self.targets:
                order = self._with_dependents(order)
            # Every record, whatever its state: a resumed delete or a failed create calls too.
            self._check_permissions([(sid, "delete") for sid in order])
            self._start_run(command, reload=False)
            result = RunResult(command=command, run_id=str(self._run.id))
            started = self.clock.now()
            self._destroy_steps(order, result)
            result.elapsed = self.clock.now() - started
            self._finish(result)
            return result

    def _with_dependents(self, order: list[str]) -> list[str]:
        """The targeted records and every record that depends on them, in `order`."""
        records = self._ledger.resources
        unknown = sorted(self.targets - set(records))
        if unknown:
            raise InvalidRequest(f"--target {unknown[0]}: the ledger records no such step")
        wanted = set(self.targets)
        grew = True
        while grew:
            grew = False
            for sid, rec in records.items():
                if sid not in wanted and wanted & set(rec.depends_on):
                    wanted.add(sid)
                    grew = True
        return [sid for sid in order if sid in wanted]

    def _destroy_steps(
        self, order: list[str], result: RunResult, remade: frozenset[str] = frozenset(),
    ) -> None:
        """Delete recorded resources, each after every recorded resource that depends on it.
        remade: steps whose original is made again after (a rollback of a replace): their
        records stay, `gone`."""
        wanted = set(order)
        dependents: dict[str, set[str]] = {sid: set() for sid in order}
        for sid in order:
            for dep in self._ledger.resources[sid].depends_on:
                if dep in wanted:
                    dependents[dep].add(sid)
        # Dependents first in the order itself, not only in the graph: the ledger keeps its
        # records by step id, and with parallelism 1 the scheduler never jumps ahead in it.
        order = list(TopologicalSorter({sid: dependents[sid] for sid in order}).static_order())

        def task(step_id: str) -> None:
            threading.current_thread().__dict__["provision_step"] = step_id
            rec = self._ledger.resources[step_id]
            kind = kind_named(rec.kind)
            target = target_of(kind, rec.path, rec.spec)
            started = self.clock.now()
            deadline = started + kind.timeout
            action = "leave" if kind.left_on_destroy else "delete"
            self._emit(Event("step_started", step=step_id, kind=kind.name, action=action,
                             resource=rec.path))
            try:
                if rec.operation and rec.operation.name:
                    self._await_recorded(kind, rec, deadline)
                if _deleted_for(self._ledger.resources.get(step_id),
                                "replace" if step_id in remade else "delete"):
                    pass  # deleted already
                elif kind.left_on_destroy:
                    self._forget(step_id)
                elif not self._delete(kind, step_id, target, deadline,
                                      replacing=step_id in remade):
                    action = "absent"  # nothing there: never made, or deleted outside
            except Exception as exc:
                self._fail(step_id, exc, result)
                raise
            finally:
                threading.current_thread().__dict__.pop("provision_step", None)
            with self._lock:
                result.actions[step_id] = action
            self._emit(Event("step_finished", step=step_id, kind=kind.name, action=action,
                             resource=rec.path, message=kind.left_on_destroy,
                             data={"elapsed": round(self.clock.now() - started, 3)}))

        outcome = run_graph(
            order, dependents, task, parallelism=self.parallelism, workers=self.workers,
            clock=self.clock, on_interrupt=self._interrupted,
        )
        result.skipped.update(outcome.skipped)
        result.cancelled.extend(outcome.cancelled)


@dataclass
class _Queued:
    """A step's change to an element of a batched parent, until a write carries it."""

    step_id: str
    change: ElementChange
    written: bool = False
    op: OperationRef | None = None


def _batched(kind: Kind) -> bool:
    """Whether the kind's changes are written in batches with its siblings' (the adapter
    writes many at once, under the parent's lock)."""
    return bool(kind.serialize) and hasattr(kind.adapter, "write_batch")


def _kept(chain: Replaced | None, runs: set[int]) -> Replaced | None:
    """The chain of originals, without those of runs no longer in the ledger's history."""
    if chain is None or chain.run not in runs:
        return None
    return Replaced(chain.run, replace(chain.record, replaced=_kept(chain.record.replaced, runs)))


def _deleted_for(rec: ResourceRecord | None, action: str) -> bool:
    """Whether the deletion `action` (delete, leave or replace) needs no call: the record is
    gone from the ledger, or, for a replace, its deletion half is done. A record a refresh found
    gone is deleted anyway (a 404 drops it): something may have made it again."""
    if rec is None:
        return True
    return action == "replace" and rec.status == "gone" and rec.error is None


def _lost_race(exc: ApiError) -> bool:
    """Google's ABORTED: a concurrent change won (an IAM policy's etag). Create and delete
    read what they change on every call, so calling again resolves it; update is not retried
    so, since it sends what the engine read before the call."""
    return exc.status == "ABORTED"


def _current_step() -> str | None:
    """The step the calling worker thread runs (set by the task wrappers)."""
    return threading.current_thread().__dict__.get("provision_step")






def _check_approved(approved: Preview, now: Preview) -> None:
    """Refuse to apply a plan made from another ledger state, another spec or other live
    values than the ones apply finds now (Terraform's stale saved plan)."""
    # A ledger never saved (serial 0) draws a new lineage each time it is loaded.
    same_ledger = approved.lineage == now.lineage or approved.serial == now.serial == 0
    if approved.serial != now.serial or not same_ledger:
        raise InvalidRequest(
            f"this plan was made from the ledger at serial {approved.serial}; it is at "
            f"{now.serial} now{'' if same_ledger else ' (another ledger)'}"
            ": another run changed it since. Nothing was done; run plan again."
        )

    def seen(preview: Preview) -> dict[str, tuple[str, str, str, str]]:
        return {c.step: (c.action, c.resource, c.fingerprint, c.observed) for c in preview.steps}

    before, after = seen(approved), seen(now)
    differ = sorted(s for s in before.keys() | after.keys() if before.get(s) != after.get(s))
    if differ:
        shown = ", ".join(differ[:5]) + (" ..." if len(differ) > 5 else "")
        raise InvalidRequest(
            f"the plan file or the cloud changed since this plan was made ({shown}): nothing "
            "was done; run plan again"
        )


def _stable_order(nodes: list[str], deps: dict[str, set[str]]) -> list[str]:
    """The nodes in dependency order, each as early in `nodes` as its dependencies allow."""
    rank = {n: i for i, n in enumerate(nodes)}
    users: dict[str, list[str]] = {n: [] for n in nodes}
    waiting = {n: len(deps[n]) for n in nodes}
    for n in nodes:
        for d in deps[n]:
            users[d].append(n)
    ready = [rank[n] for n in nodes if not waiting[n]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        n = nodes[heapq.heappop(ready)]
        order.append(n)
        for u in users[n]:
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(ready, rank[u])
    if len(order) < len(nodes):
        stuck = sorted(n.split("\0")[0] for n in nodes if waiting[n])
        raise StepError(f"these steps wait on each other, so none can go first: "
                        f"{', '.join(stuck)}; apply them in two runs (with --target)")
    return order


def _reaches(deps: dict[str, set[str]], start: str, goal: str) -> bool:
    """Whether `start` waits, directly or not, on `goal`."""
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(deps.get(node, ()))
    return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (ApiError, OperationError, StepError, DeadlineExceeded)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _logged(event: Event) -> str:
    """An event as one log line (`--verbosity info`): its type, step, action and message."""
    words = [event.type, event.step or "", event.action or "", event.resource or ""]
    line = " ".join(word for word in words if word)
    return f"{line}: {event.message}" if event.message else line
