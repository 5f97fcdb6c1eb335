"""The ledger: what one plan instance owns in the cloud, and the runs that made it so.

Plain dataclasses with a JSON round trip. `from_dict` checks every field, because a ledger is
input: a file someone may have edited, restored or copied from another version, and a wrong
field must become a clear message, never a crash deep inside the engine.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, cast, get_args

FORMAT = 1

# The whole ledger is rewritten before and after every mutating call, so its size is the cost of
# every write: history is bounded. Old runs keep their actions and result; only the last few keep
# their events (a 1,000-step apply makes thousands).
KEEP_RUNS = 20
KEEP_EVENTS = 3

# gone: recorded present, found deleted outside provision by a refresh, or deleted by the first
# half of a replace (apply makes it again).
Status = Literal["pending", "in_flight", "present", "deleting", "failed", "gone"]
Origin = Literal["created", "adopted", "imported"]
# replace: the deletion half of a replace; once done, the record stays, `gone`, for the create.
OperationAction = Literal["create", "update", "delete", "replace"]
RunResult = Literal["running", "succeeded", "failed", "interrupted", "rolled_back"]

STATUSES: frozenset[str] = frozenset(get_args(Status))
ORIGINS: frozenset[str] = frozenset(get_args(Origin))
OPERATION_ACTIONS: frozenset[str] = frozenset(get_args(OperationAction))
RUN_RESULTS: frozenset[str] = frozenset(get_args(RunResult))

T = TypeVar("T")


def now() -> str:
    """The ledger's timestamps: UTC, ISO 8601, milliseconds, sortable as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Operation:
    """A mutating call and its long-running operation, recorded write-ahead: the intent (with
    the request id a retried insert reuses) before the call, with `name` still empty; the
    operation's name and scope (`ref`) as soon as the call returns. A killed run resumes by
    polling it instead of calling again."""

    name: str
    api: str
    action: OperationAction
    started: str
    request_id: str = ""
    ref: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "api": self.api,
            "action": self.action,
            "started": self.started,
            "request_id": self.request_id,
            "ref": self.ref,
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> Operation:
        d = _object(data, where)
        ref = d.get("ref") or {}
        if not isinstance(ref, dict) or not all(isinstance(v, str) for v in ref.values()):
            raise ValueError(f"{where}.ref: expected an object of strings")
        return cls(
            name=_get(d, "name", str, where),
            api=_get(d, "api", str, where),
            action=cast(OperationAction, _choice(d, "action", OPERATION_ACTIONS, where)),
            started=_get(d, "started", str, where),
            request_id=_optional(d, "request_id", str, where) or "",
            ref=ref,
        )


@dataclass
class ResourceRecord:
    """One resource the ledger owns (or is about to own: `pending` is written before the call).

    spec holds the applied properties with secret values already replaced by keyed fingerprints;
    previous_spec is what an update replaced, so a rollback can put it back; replaced is the
    record of the resource a replace deleted, written before the deletion, so a rollback can
    make it again.
    depends_on names the steps this one depended on when applied, so destroy can run in reverse
    dependency order from the ledger alone, without the plan.
    """

    step_id: str
    kind: str
    path: str
    status: Status = "pending"
    fingerprint: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    operation: Operation | None = None
    previous_spec: dict[str, Any] | None = None
    origin: Origin = "created"
    created_run: int | None = None
    updated_run: int | None = None
    error: str | None = None
    depends_on: list[str] = field(default_factory=list)
    replaced: Replaced | None = None

    def to_dict(self) -> dict[str, Any]:
        # Shares spec/outputs with the record rather than copying: this runs on every save.
        return {
            "step_id": self.step_id,
            "kind": self.kind,
            "path": self.path,
            "status": self.status,
            "fingerprint": self.fingerprint,
            "spec": self.spec,
            "outputs": self.outputs,
            "operation": self.operation.to_dict() if self.operation else None,
            "previous_spec": self.previous_spec,
            "origin": self.origin,
            "created_run": self.created_run,
            "updated_run": self.updated_run,
            "error": self.error,
            "depends_on": self.depends_on,
            "replaced": self.replaced.to_dict() if self.replaced else None,
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> ResourceRecord:
        d = _object(data, where)
        operation = d.get("operation")
        replaced = d.get("replaced")
        return cls(
            step_id=_get(d, "step_id", str, where),
            kind=_get(d, "kind", str, where),
            path=_get(d, "path", str, where),
            status=cast(Status, _choice(d, "status", STATUSES, where)),
            fingerprint=_get(d, "fingerprint", str, where),
            spec=_get(d, "spec", dict, where),
            outputs=_get(d, "outputs", dict, where),
            operation=None
            if operation is None
            else Operation.from_dict(operation, f"{where}.operation"),
            previous_spec=_optional(d, "previous_spec", dict, where),
            origin=cast(Origin, _choice(d, "origin", ORIGINS, where)),
            created_run=_optional(d, "created_run", int, where),
            updated_run=_optional(d, "updated_run", int, where),
            error=_optional(d, "error", str, where),
            depends_on=_strings(d, "depends_on", where),
            replaced=None if replaced is None
            else Replaced.from_dict(replaced, f"{where}.replaced"),
        )


@dataclass
class Replaced:
    """A resource as it was before run `run` replaced it: what a rollback of that run makes
    again. Its record may hold the original an earlier run replaced, and so on."""

    run: int
    record: ResourceRecord

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "record": self.record.to_dict()}

    @classmethod
    def from_dict(cls, data: object, where: str) -> Replaced:
        d = _object(data, where)
        record = ResourceRecord.from_dict(d.get("record"), f"{where}.record")
        run = _get(d, "run", int, where)
        if record.replaced is not None and record.replaced.run >= run:
            raise ValueError(f"{where}.record.replaced.run: not before run {run}")
        return cls(run=run, record=record)


@dataclass
class Action:
    """What a run did to one step: `action` is create/update/replace/delete/adopt/import/...,
    `result` how it ended; both are the engine's words."""

    step_id: str
    action: str
    result: str

    def to_dict(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "action": self.action, "result": self.result}

    @classmethod
    def from_dict(cls, data: object, where: str) -> Action:
        d = _object(data, where)
        return cls(
            step_id=_get(d, "step_id", str, where),
            action=_get(d, "action", str, where),
            result=_get(d, "result", str, where),
        )


@dataclass
class Run:
    """One command that held the ledger: apply, destroy, rollback, import, refresh...
    Only the last KEEP_RUNS runs are kept, and only the last KEEP_EVENTS keep their events."""

    id: int
    command: str
    started: str
    finished: str | None = None
    result: RunResult = "running"
    actions: list[Action] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def act(self, step_id: str, action: str, result: str) -> Action:
        entry = Action(step_id, action, result)
        self.actions.append(entry)
        return entry

    def finish(self, result: RunResult) -> None:
        self.result = result
        self.finished = now()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "result": self.result,
            "actions": [a.to_dict() for a in self.actions],
            "events": self.events,
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> Run:
        d = _object(data, where)
        actions = _get(d, "actions", list, where)
        events = _get(d, "events", list, where)
        for i, event in enumerate(events):
            _object(event, f"{where}.events[{i}]")
        return cls(
            id=_get(d, "id", int, where),
            command=_get(d, "command", str, where),
            started=_get(d, "started", str, where),
            finished=_optional(d, "finished", str, where),
            result=cast(RunResult, _choice(d, "result", RUN_RESULTS, where)),
            actions=[Action.from_dict(a, f"{where}.actions[{i}]") for i, a in enumerate(actions)],
            events=events,
        )


@dataclass
class Ledger:
    """Everything one plan instance owns. `lineage` names the instance for its whole life (it goes
    into ownership markers on the resources); `serial` counts the writes, 0 meaning never saved."""

    lineage: str
    plan: str
    serial: int = 0
    format: int = FORMAT
    resources: dict[str, ResourceRecord] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)

    @classmethod
    def new(cls, plan_name: str) -> Ledger:
        return cls(lineage=uuid.uuid4().hex, plan=plan_name)

    def begin_run(self, command: str) -> Run:
        run = Run(id=self.runs[-1].id + 1 if self.runs else 1, command=command, started=now())
        self.runs.append(run)
        del self.runs[:-KEEP_RUNS]
        for old in self.runs[:-KEEP_EVENTS]:
            old.events = []
        return run

    def last_run(self, command: str | None = None) -> Run | None:
        for run in reversed(self.runs):
            if command is None or run.command == command:
                return run
        return None

    def record(self, step_id: str) -> ResourceRecord | None:
        return self.resources.get(step_id)

    def close_interrupted_runs(self) -> list[Run]:
        """Marks `interrupted` the runs still `running`: called by whoever just took the lock, no
        run can still be going, so these were killed."""
        interrupted = [run for run in self.runs if run.result == "running"]
        for run in interrupted:
            run.result = "interrupted"
        return interrupted

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "lineage": self.lineage,
            "serial": self.serial,
            "plan": self.plan,
            "resources": {step_id: r.to_dict() for step_id, r in self.resources.items()},
            "runs": [run.to_dict() for run in self.runs],
        }

    @classmethod
    def from_dict(cls, data: object) -> Ledger:
        d = _object(data, "ledger")
        resources: dict[str, ResourceRecord] = {}
        for step_id, raw in _get(d, "resources", dict, "ledger").items():
            record = ResourceRecord.from_dict(raw, f"resources.{step_id}")
            if record.step_id != step_id:
                raise ValueError(f"resources.{step_id}: step_id is {record.step_id!r}")
            resources[step_id] = record
        runs = _get(d, "runs", list, "ledger")
        serial = _get(d, "serial", int, "ledger")
        if serial < 0:
            raise ValueError(f"ledger.serial: {serial} is negative")
        fmt = _get(d, "format", int, "ledger")
        if fmt != FORMAT:
            raise ValueError(f"ledger.format: {fmt} is not {FORMAT}")
        return cls(
            lineage=_get(d, "lineage", str, "ledger"),
            plan=_get(d, "plan", str, "ledger"),
            serial=serial,
            format=fmt,
            resources=resources,
            runs=[Run.from_dict(run, f"runs[{i}]") for i, run in enumerate(runs)],
        )


def finished(ledger: Ledger) -> bool:
    """Whether `ledger` is as a run left it when it ended (what a backup keeps)."""
    return bool(ledger.runs) and ledger.runs[-1].finished is not None


def _object(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, found {_type_name(data)}")
    return data


def _get(d: dict[str, Any], key: str, kind: type[T], where: str) -> T:
    if key not in d:
        raise ValueError(f"{where}.{key}: missing")
    value = d[key]
    # bool is an int to Python, never to the ledger.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where}.{key}: expected {kind.__name__}, found {_type_name(value)}")
    return value


def _optional(d: dict[str, Any], key: str, kind: type[T], where: str) -> T | None:
    return None if d.get(key) is None else _get(d, key, kind, where)


def _choice(d: dict[str, Any], key: str, allowed: frozenset[str], where: str) -> str:
    value = _get(d, key, str, where)
    if value not in allowed:
        raise ValueError(f"{where}.{key}: {value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _strings(d: dict[str, Any], key: str, where: str) -> list[str]:
    values = _get(d, key, list, where)
    if not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where}.{key}: expected a list of strings")
    return values


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__
