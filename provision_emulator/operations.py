"""Long-running operations on a wall clock.

An operation records when it started and when it will end (start + simulated duration x time
scale). Nothing runs in the background: before each request the server applies the effects of every
operation whose end has passed, in end order. Times are wall-clock (time.time), so a persisted
cloud picks up its in-flight operations where they were after a restart.
"""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field
from typing import Any

from provision_emulator.store import Key, parent_of

MINUTE = 60.0

# Simulated durations in seconds, by "api.collection", then by "api", then DEFAULT_DURATION.
# Modelled on what the reference sources report (reference/architectures.md §4).
DURATIONS: dict[str, float] = {
    "compute": 10.0,
    "compute.networks": 10.0,
    "compute.subnetworks": 15.0,
    "compute.firewalls": 5.0,
    "compute.forwardingRules": 20.0,
    "compute.globalForwardingRules": 20.0,
    "compute.serviceAttachments": 30.0,
    "compute.regionBackendServices": 15.0,
    "compute.backendServices": 15.0,
    "compute.routers": 10.0,
    "compute.vpnGateways": 30.0,
    # Not an operation: how long a managed instance group's new instance takes to be RUNNING
    # (PROVISIONING the first half, STAGING the second). "This operation is marked as DONE
    # when the group is created even if the instances in the group have not yet been
    # created" (regionInstanceGroupManagers.insert).
    "compute.instances": 45.0,
    # A tunnel's insert lasts until its first handshake could be done: once both ends exist,
    # a pair reads ESTABLISHED.
    "compute.vpnTunnels": 60.0,
    # Not an operation: how long a managed certificate stays PROVISIONING once a load balancer
    # serves it.
    "compute.sslCertificates.managed": 10 * MINUTE,
    "run.projects.locations.services": 30.0,
    "serviceusage.services": 20.0,
    "apigee": 60.0,
    "apigee.organizations": 25 * MINUTE,
    "apigee.organizations.instances": 30 * MINUTE,
    "apigee.organizations.endpointAttachments": 10 * MINUTE,
    "apigee.organizations.environments": 3 * MINUTE,
    "apigee.organizations.envgroups": 2 * MINUTE,
    "apigee.organizations.envgroups.attachments": 2 * MINUTE,
    "apigee.organizations.instances.attachments": 5 * MINUTE,
    "apigee.organizations.dnsZones": 5 * MINUTE,
    # Not an operation: how long a proxy deployment stays PROGRESSING before READY.
    "apigee.organizations.environments.apis.revisions.deployments": 15.0,
    "servicenetworking": 60.0,
    # Not an operation: how long after its last producer left Google still counts a private
    # services connection as used (deleteConnection fails meanwhile).
    "servicenetworking.producerRelease": 15 * MINUTE,
    "dns.changes": 2.0,
    # A connectivity test's analysis: tens of seconds on Google.
    "networkmanagement": 30.0,
    "privateca": 20.0,
    # A CA's key is made and its certificate signed: about a minute on Google.
    "privateca.projects.locations.caPools.certificateAuthorities": 60.0,
}
DEFAULT_DURATION = 10.0


def duration(api: str, collection: str, overrides: dict[str, float] | None = None) -> float:
    """Simulated seconds an operation on `collection` takes."""
    for table in (overrides or {}, DURATIONS):
        for key in (f"{api}.{collection}", api):
            if key in table:
                return table[key]
    return DEFAULT_DURATION


@dataclass
class Operation:
    api: str
    path: str  # the operation's own resource path
    verb: str  # compute's operationType: "insert", "delete", "patch", "enable", ...
    target_api: str
    target: str  # the resource path it acts on ("" for none)
    collection: str
    start: float
    end: float
    effect: str  # "put", "delete", or a rule's named effect ("serviceusage.enable")
    payload: Any = None  # the effect's input: the resource body to store, or rule arguments
    error: dict[str, Any] | None = None  # ApiError fields when the operation will fail
    done: bool = False
    response: Any = None  # set when done: what a long-running operation reports as `response`
    info: dict[str, Any] = field(default_factory=dict)  # style data fixed at start (ids, schema)

    @property
    def key(self) -> Key:
        return (self.api, self.path)

    @property
    def target_key(self) -> Key:
        return (self.target_api, self.target)


class Operations:
    def __init__(self) -> None:
        self._ops: dict[Key, Operation] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._pending: dict[Key, Key] = {}  # target -> its unfinished operation
        self._counter = 0

    def __len__(self) -> int:
        return len(self._ops)

    def add(self, op: Operation) -> None:
        self._ops[op.key] = op
        if not op.done:
            self._counter += 1
            heapq.heappush(self._heap, (op.end, self._counter, op.key))
            if op.target:
                self._pending[op.target_key] = op.key

    def get(self, api: str, path: str) -> Operation | None:
        return self._ops.get((api, path))

    def pending(self, api: str, target: str) -> Operation | None:
        key = self._pending.get((api, target))
        return self._ops.get(key) if key else None

    def in_flight(self) -> list[Operation]:
        """Unfinished operations that act on a resource."""
        return [self._ops[k] for k in self._pending.values() if k in self._ops]

    def due(self, now: float) -> list[Operation]:
        """Unfinished operations whose end has passed, oldest end first; marked done."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, _, key = heapq.heappop(self._heap)
            op = self._ops.get(key)
            if op is None or op.done:
                continue
            op.done = True
            if self._pending.get(op.target_key) == key:
                del self._pending[op.target_key]
            out.append(op)
        return out

    def under(self, api: str, parent: str) -> list[Operation]:
        return [op for op in self._ops.values() if op.api == api and parent_of(op.path) == parent]

    def remove(self, api: str, path: str) -> Operation | None:
        op = self._ops.pop((api, path), None)
        if op is not None and self._pending.get(op.target_key) == op.key:
            del self._pending[op.target_key]
        return op

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(op) for op in self._ops.values()]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> Operations:
        ops = cls()
        for item in data:
            ops.add(Operation(**item))
        return ops
