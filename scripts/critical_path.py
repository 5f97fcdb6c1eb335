"""The best time any tool could take for a plan: the makespan of an ideal run.

The ideal run has unlimited workers, free requests and no polling delay: a step starts the
moment the steps it depends on have finished, and takes exactly the simulated duration the
emulator gives its operations (`provision_emulator.operations.duration`, i.e. the DURATIONS
table). Google's one-operation-at-a-time parents (an Apigee organization; a network's peering)
are modelled as locks, named by the kind's own `serialize` template: a step that needs a busy
lock queues for it, first come first served, file order breaking ties. Work that follows an
operation without holding the lock (an API proxy's deployment turning READY) counts after it.

Which operations a step waits for comes from its kind's adapter: a compute kind's client names
the emulator collection ("RegionBackendServicesClient" -> compute.regionBackendServices), an
Apigee kind's method prefix does too (apigee.organizations.instances); the other kinds are
listed in OTHER_KINDS, and a kind found nowhere is costed at its API's default duration (and
named in `Model.guessed`).

Destroy runs the graph reversed. A Service Networking connection is refused for a while after
the Apigee organization that used it is deleted (the emulator's producerRelease lag), so its
delete starts no earlier than that lag after the organization's delete ends.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.engine.steps import kind_named, target_of
from orchestrator.kinds.adapter import ComputeAdapter
from orchestrator.kinds.aip import AipAdapter
from orchestrator.kinds.base import Kind
from provision_emulator.operations import duration

# kind -> (operations of a create, readiness after it, operations of a delete), as emulator
# "api.collection" keys. Empty: the call answers at once (a synchronous create, or a delete
# that only forgets, as disabling an API on destroy would break other users of the project).
OTHER_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "serviceusage.service": (("serviceusage.services",), (), ()),
    "servicenetworking.connection": (("servicenetworking",), (), ("servicenetworking",)),
    "servicenetworking.peered_dns_domain": (("servicenetworking",), (), ("servicenetworking",)),
    "compute.network_peering_routes": (("compute.networks",), (), ("compute.networks",)),
    "compute.router_interface": (("compute.routers",), (), ("compute.routers",)),
    "compute.router_bgp_peer": (("compute.routers",), (), ("compute.routers",)),
    "compute.shared_vpc_host": (("compute.projects",), (), ("compute.projects",)),
    "compute.shared_vpc_service_project": (("compute.projects",), (), ("compute.projects",)),
    "compute.subnetwork_iam_member": ((), (), ()),
    "run.service": (
        ("run.projects.locations.services",), (), ("run.projects.locations.services",),
    ),
    "run.service_iam_member": ((), (), ()),
    "iam.service_account": ((), (), ()),
    "dns.managed_zone": ((), (), ()),
    "dns.record_set": (("dns.changes",), (), ("dns.changes",)),
    "apigee.api_proxy": (
        (), ("apigee.organizations.environments.apis.revisions.deployments",), (),
    ),
}
RELEASE_LAG = ("servicenetworking.connection", "apigee.organization",
               "servicenetworking.producerRelease")


def seconds(key: str) -> float:
    api, _, collection = key.partition(".")
    return duration(api, collection)


def _collection_of(kind: Kind) -> str | None:
    adapter = kind.adapter
    if isinstance(adapter, ComputeAdapter):
        plural = adapter.client.removesuffix("Client")
        return f"compute.{plural[0].lower()}{plural[1:]}"
    if isinstance(adapter, AipAdapter):
        return adapter.collection
    return None


@dataclass
class Model:
    """The per-step costs of one plan; `guessed` names kinds costed at their API's default."""

    guessed: set[str] = field(default_factory=set)

    def costs(self, kind: Kind, verb: str) -> tuple[float, float]:
        """(seconds holding the kind's lock, seconds after it) of a create or a delete."""
        if kind.name in OTHER_KINDS:
            create, ready, delete = OTHER_KINDS[kind.name]
        else:
            key = _collection_of(kind)
            if key is None:
                self.guessed.add(kind.name)
                key = kind.api
            create, ready, delete = (key,), (), (key,)
        ops = create if verb == "create" else delete
        after = ready if verb == "create" else ()
        return sum(seconds(k) for k in ops), sum(seconds(k) for k in after)


@dataclass(frozen=True)
class Task:
    """One step of the ideal run: `deps` must end first; `held` seconds under `lock`, then
    `after` seconds more; `delay` extra seconds after the end of the deps named in it."""

    id: str
    deps: frozenset[str]
    held: float
    after: float = 0.0
    lock: str | None = None
    delay: Mapping[str, float] = field(default_factory=dict)


def makespan(tasks: Iterable[Task]) -> float:
    """The end of the last task when each starts as soon as its deps (and lock) allow."""
    tasks = list(tasks)
    order = {t.id: i for i, t in enumerate(tasks)}
    by_id = {t.id: t for t in tasks}
    dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
    missing = {t.id: len(t.deps & by_id.keys()) for t in tasks}
    for t in tasks:
        for d in t.deps & by_id.keys():
            dependents[d].append(t.id)
    end: dict[str, float] = {}
    busy: dict[str, bool] = {}
    queued: dict[str, list[tuple[float, int, str]]] = {}
    # Events: (time, 0 = a lock is released / 1 = a task is ready, file order, task id).
    events = [(0.0, 1, order[t.id], t.id) for t in tasks if missing[t.id] == 0]
    heapq.heapify(events)

    def start(task: Task, now: float) -> None:
        release = now + task.held
        if task.lock:
            busy[task.lock] = True
            heapq.heappush(events, (release, 0, order[task.id], task.id))
        finish(task, release + task.after)

    def finish(task: Task, when: float) -> None:
        end[task.id] = when
        for nxt in dependents[task.id]:
            missing[nxt] -= 1
            if missing[nxt] == 0:
                t = by_id[nxt]
                ready = max(
                    (end[d] + t.delay.get(d, 0.0) for d in t.deps & by_id.keys()), default=0.0
                )
                heapq.heappush(events, (ready, 1, order[nxt], nxt))

    while events:
        now, what, _, tid = heapq.heappop(events)
        task = by_id[tid]
        if what == 0:  # task's lock is free again: the first in its queue takes it
            busy[task.lock or ""] = False
            waiting = queued.get(task.lock or "", [])
            if waiting:
                _, _, next_id = heapq.heappop(waiting)
                start(by_id[next_id], now)
        elif task.lock and busy.get(task.lock):
            heapq.heappush(queued.setdefault(task.lock, []), (now, order[tid], tid))
        else:
            start(task, now)
    return max(end.values(), default=0.0)


def longest_chain(weights: Mapping[str, float], deps: Mapping[str, Iterable[str]]) -> float:
    """The heaviest path through a graph given in dependency order (each step after its deps)."""
    total: dict[str, float] = {}
    for sid, weight in weights.items():
        total[sid] = weight + max((total[d] for d in deps.get(sid, ()) if d in total),
                                  default=0.0)
    return max(total.values(), default=0.0)


def plan_tasks(plan: Any, records: Mapping[str, Any], model: Model, verb: str) -> list[Task]:
    """The ideal run's tasks for `verb` ("create": the plan's graph in file order; "delete": the
    same graph reversed). `records`: the ledger's resources after an apply, which name each
    step's resource and so its lock."""
    steps = list(plan.steps) if verb == "create" else list(reversed(plan.steps))
    kinds = {s.id: kind_named(s.kind) for s in plan.steps}
    dependents: dict[str, set[str]] = {s.id: set() for s in plan.steps}
    for s in plan.steps:
        for d in s.deps:
            dependents[d].add(s.id)
    connection, producer, lag = RELEASE_LAG
    tasks = []
    for step in steps:
        kind = kinds[step.id]
        held, after = model.costs(kind, verb)
        deps = frozenset(step.deps if verb == "create" else dependents[step.id])
        delay = {}
        if verb == "delete" and kind.name == connection:
            delay = {d: seconds(lag) for d in deps if kinds[d].name == producer}
        tasks.append(Task(step.id, deps, held, after, _lock(kind, records.get(step.id)), delay))
    return tasks


def _lock(kind: Kind, record: Any) -> str | None:
    if not kind.serialize or record is None:
        return None
    target = target_of(kind, record.path, record.spec)
    return kind.serialize.format(name=target.name, **target.scope)
