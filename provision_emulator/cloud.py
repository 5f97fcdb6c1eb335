"""The emulated cloud: every piece of state, and the shared mechanics rules build on.

All of it lives on the server's event loop thread; nothing here blocks or awaits, so a request's
handling is atomic with respect to the others.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from provision_emulator import catalog, formats, operations
from provision_emulator import faults as faultlib
from provision_emulator.access import Access
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.clock import Clock
from provision_emulator.errors import ApiError
from provision_emulator.faults import Faults
from provision_emulator.operations import Operation, Operations
from provision_emulator.quotas import Quotas
from provision_emulator.refs import Ref, References, replace_at, strings
from provision_emulator.store import Key, Resource, Store

if TYPE_CHECKING:
    from provision_emulator.apis.base import ApiRules

STATE_VERSION = 1
EMPTY_POLICY_ETAG = "ACAB"  # what Google answers for a resource nobody has set a policy on


@dataclass(frozen=True)
class Config:
    # None: a VirtualClock (time moves by events, see clock.py); else a ScaledClock with this
    # many real seconds per simulated second.
    time_scale: float | None = None
    seed: int = 0
    # When set, only these project ids exist; otherwise every well-formed project id does.
    projects: frozenset[str] | None = None
    # Answer 403 SERVICE_DISABLED for calls to an API not enabled through serviceusage.
    enforce_services: bool = False
    durations: Mapping[str, float] = field(default_factory=dict)  # overrides operations.DURATIONS
    faults: Faults = field(default_factory=Faults)
    access: Access = field(default_factory=Access)  # the caller's roles: see access.py
    long_poll: float = 120.0  # simulated seconds an operation `wait` may hold the request
    # Per-minute rate quotas by group (quotas.py): requests a minute; empty, none enforced.
    quotas: Mapping[str, int] = field(default_factory=dict)


def failure(error: ApiError) -> dict[str, Any]:
    """An operation's planned failure, as persisted."""
    return {
        "http": error.code,
        "status": error.status,
        "rpc_code": error.rpc()["code"],
        "reason": error.reason,
        "message": error.message,
    }


class Cloud:
    def __init__(self, rules: Mapping[str, ApiRules], config: Config, clock: Clock) -> None:
        self.rules = dict(rules)
        self.config = config
        self.clock = clock
        self.references = References(self.rules)
        self.clear()

    def clear(self) -> None:
        self.store = Store()
        self.ops = Operations()
        self.policies: dict[Key, dict[str, Any]] = {}
        self.request_ids: dict[str, Key] = {}  # "project/requestId" -> operation
        self.projects: dict[str, str] = {}  # project ids seen -> numbers, to look numbers up
        self.faults = self.config.faults
        self.quotas = Quotas(self.config.quotas)
        self.access = self.config.access
        self.draws: dict[str, int] = {}  # requests seen per (method, subject): see faults.py
        self.changed = False

    # --- time -----------------------------------------------------------------------------

    def scaled(self, simulated: float) -> float:
        """A span of Google's seconds on this cloud's clock."""
        return self.clock.scaled(simulated)

    def now(self) -> float:
        return self.clock.now()

    def skip(self, simulated: float) -> None:
        """Jump the clock `simulated` seconds ahead, finishing what ends meanwhile."""
        self.clock.skip(simulated)
        self.advance(self.now())

    def advance(self, now: float) -> None:
        """Apply every operation that has finished by `now`."""
        for op in self.ops.due(now):
            self._finish(op)

    def _finish(self, op: Operation) -> None:
        self.changed = True
        if op.error:
            return
        if op.effect == "put":
            old = self.store.get(op.target_api, op.target)
            res = Resource(
                api=op.target_api,
                path=op.target,
                collection=op.collection,
                body=op.payload,
                created=old.created if old else op.end,
                refs=tuple((a, p) for a, p in op.info.get("refs", ())),
            )
            self.store.put(res)
            self.landed(res, removed=False)
            op.response = self.rules[res.api].render(self, res)
        elif op.effect == "delete":
            gone = self.store.remove(op.target_api, op.target)
            self.policies.pop(op.target_key, None)
            if gone is not None:
                self.landed(gone, removed=True)
            op.response = gone.body if gone else None
        else:
            op.response = self.rules[op.api].effects[op.effect](self, op)

    def landed(self, res: Resource, *, removed: bool) -> None:
        rules = self.rules[res.api]
        hooks = rules.removed_hooks if removed else rules.stored_hooks
        for hook in hooks.get(res.collection, ()):
            hook(self, res)

    def draw_key(self, method_id: str, path: str) -> str:
        """A request's key for fault draws: its method, what it acts on (an operation's poll
        acts on the operation's target) and how many such requests came before it."""
        op = self.ops.get(method_id.split(".")[0], path)
        subject = f"{op.target_api}/{op.target}/{op.verb}" if op is not None else path
        key = f"{method_id} {subject}"
        n = self.draws[key] = self.draws.get(key, 0) + 1
        return f"{key} #{n}"

    def visible(self, res: Resource, now: float) -> bool:
        """False while a new resource is still settling (the eventual-consistency fault)."""
        return now >= res.created + self.scaled(self.faults.consistency_delay)

    # --- operations -----------------------------------------------------------------------

    def start_operation(
        self,
        call: Call,
        *,
        target: str,
        collection: str,
        effect: str,
        payload: Any = None,
        refs: list[Key] | tuple[Key, ...] = (),
        verb: str | None = None,
        response_schema: str | None = None,
        duration: float | None = None,
    ) -> Operation:
        """Begin an operation on `target`; its effect applies when it ends."""
        rules = self.rules[call.api]
        simulated = (
            duration
            if duration is not None
            else operations.duration(call.api, collection, self.config.durations)
        )
        coll = catalog.collections(call.api).get(collection)
        existing = self.store.get(call.api, target)
        target_id = (payload or {}).get("id") if isinstance(payload, dict) else None
        op = Operation(
            api=call.api,
            path=rules.operation_path(self, call, target),
            verb=verb or call.method.name,
            target_api=call.api,
            target=target,
            collection=collection,
            start=call.now,
            end=call.now + self.scaled(simulated),
            effect=effect,
            payload=payload,
            info={
                "refs": [list(r) for r in refs],
                "response_schema": response_schema or (coll.schema if coll else None),
                "target_id": target_id or (existing.body.get("id") if existing else None),
            },
        )
        if faultlib.operation_fails(self.faults, self.config.seed, call.draw, call.method.id):
            op.error = failure(
                ApiError(
                    500,
                    "Internal error. Please try again or contact Google Support. "
                    f"(Code: '{formats.fingerprint(op.path)}')",
                    reason="internalError",
                    status="INTERNAL",
                )
            )
        self.ops.add(op)
        request_id = call.arg("requestId")
        if request_id:
            self.request_ids[f"{call.project}/{request_id}"] = op.key
        self.changed = True
        return op

    def replayed(self, call: Call) -> Operation | None:
        """The operation an earlier request with this requestId started, if any."""
        request_id = call.arg("requestId")
        if not request_id:
            return None
        key = self.request_ids.get(f"{call.project}/{request_id}")
        return self.ops.get(*key) if key else None

    # --- resources and references ---------------------------------------------------------

    def put(self, res: Resource) -> None:
        self.store.put(res)
        self.changed = True

    def remove(self, api: str, path: str) -> Resource | None:
        self.policies.pop((api, path), None)
        self.changed = True
        return self.store.remove(api, path)

    def exists(self, api: str, path: str, coll: Collection) -> bool:
        return self.store.get(api, path) is not None or self.rules[api].implicit(self, path, coll)

    def resolve(self, call: Call, value: str) -> Resource | None:
        """The stored resource a reference string names, if any."""
        expanded = self.rules[call.api].expand_reference(call, value)
        for ref in self.references.parse(expanded, prefer=call.api):
            res = self.store.get(ref.api, ref.path)
            if res is not None:
                return res
        return None

    def resolve_references(self, call: Call, body: Any, own_path: str) -> list[Key]:
        """Check every reference in `body` (rewriting it to its stored form); the targets.

        Raises the API's own error for a reference to a missing resource.
        """
        rules = self.rules[call.api]
        found: list[Key] = []
        for where, value in list(strings(body)):
            expanded = rules.expand_reference(call, value)
            candidates = self.references.parse(expanded, prefer=call.api)
            if not candidates or any(c.path == own_path for c in candidates):
                continue
            hit = next((c for c in candidates if self.exists(c.api, c.path, c.collection)), None)
            if hit is None:
                self._refuse_reference(call, candidates[0])
            if self.store.get(hit.api, hit.path) is not None:
                found.append((hit.api, hit.path))
            stored = rules.normalize_reference(call, hit, expanded)
            if stored != value:
                replace_at(body, where, stored)
        return found

    def _refuse_reference(self, call: Call, ref: Ref) -> NoReturn:
        pending = self.ops.pending(ref.api, ref.path)
        rules = self.rules[call.api]
        if pending is not None and pending.effect == "put":
            raise rules.busy(ref.path, pending)
        raise rules.missing_reference(call, ref)

    # --- projects -------------------------------------------------------------------------

    def project_number(self, project_id: str) -> str:
        number = formats.project_number(project_id)
        self.projects[project_id] = number
        return number

    def project_id(self, id_or_number: str) -> str | None:
        """A project id from an id or a number; None for a number of no project seen."""
        if not id_or_number.isdigit():
            return id_or_number
        known = set(self.projects) | set(self.config.projects or ())
        for project in known:
            if formats.project_number(project) == id_or_number:
                return project
        return None

    def project_exists(self, project_id: str) -> bool:
        return self.config.projects is None or project_id in self.config.projects

    # --- IAM policies ---------------------------------------------------------------------

    def policy(self, key: Key, now: float) -> dict[str, Any]:
        record = self.policies.get(key)
        if record is None:
            return {"version": 1, "etag": EMPTY_POLICY_ETAG}
        return record["policy"] if now >= record["visible_at"] else record["previous"]

    def current_policy(self, key: Key) -> dict[str, Any]:
        record = self.policies.get(key)
        return record["policy"] if record else {"version": 1, "etag": EMPTY_POLICY_ETAG}

    def set_policy(self, key: Key, policy: dict[str, Any], now: float) -> None:
        self.policies[key] = {
            "policy": policy,
            "previous": self.policy(key, now),
            "visible_at": now + self.scaled(self.faults.iam_delay),
        }
        self.changed = True

    # --- persistence ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "version": STATE_VERSION,
                "resources": self.store.to_json(),
                "operations": self.ops.to_json(),
                "policies": [
                    {"api": api, "path": path, **record}
                    for (api, path), record in self.policies.items()
                ],
                "requestIds": {k: list(v) for k, v in self.request_ids.items()},
                "projects": dict(self.projects),
                "clock": self.clock.to_json(),
            }
        )

    def load(self, data: dict[str, Any]) -> None:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported emulator state version {data.get('version')!r}")
        self.clear()
        data = copy.deepcopy(data)
        self.store = Store.from_json(data.get("resources", {}))
        self.ops = Operations.from_json(data.get("operations", []))
        for record in data.get("policies", []):
            key = (record.pop("api"), record.pop("path"))
            self.policies[key] = record
        self.request_ids = {k: (v[0], v[1]) for k, v in data.get("requestIds", {}).items()}
        self.projects = dict(data.get("projects", {}))
        self.clock.load(data.get("clock"))
