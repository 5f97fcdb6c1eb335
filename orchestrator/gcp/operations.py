"""Waiting for Google's long-running operations.

An `OperationRef` is what the ledger records right after a mutating call returns, so that a
killed run can resume by polling instead of creating again.
"""

from __future__ import annotations

import contextlib
import keyword
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.gcp import retry
from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.clock import Clock
from orchestrator.gcp.errors import ApiError, DeadlineExceeded, MalformedRequest, OperationError
from orchestrator.gcp.protos import to_json

# Poll cadence for APIs without a long-poll wait, in simulated seconds: first poll soon, then
# back off to the Terraform provider's 10 s so a 30-minute Apigee instance costs ~200 reads.
FIRST_POLL = 1.0
MAX_POLL = 10.0
WAIT = "wait"


@dataclass(frozen=True)
class OperationRef:
    """type: "compute" (zonal/regional/global by which of zone/region is set), "lro"
    (google.longrunning.Operation of `api`) or "dns" (a Cloud DNS change in `zone`)."""

    type: str
    api: str
    name: str
    project: str = ""
    region: str = ""
    zone: str = ""

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> OperationRef:
        return cls(**data)


@dataclass
class Waiter:
    """poll: "wait" (the long-poll `wait` where the API has one, else `get` with backoff), or
    "fixed:N" (`get` at once, then every N simulated seconds, whatever the API offers: how the
    Terraform provider polls, for comparison by scripts/bench.py)."""

    clients: ClientFactory
    clock: Clock
    on_poll: Callable[[OperationRef, dict[str, Any]], None] | None = None
    poll: str = WAIT
    stream: Callable[[], str] = lambda: ""  # whose backoff a retried poll is (see retry.call)

    def __post_init__(self) -> None:
        self._fixed = fixed_interval(self.poll)

    def wait(self, op: OperationRef, deadline: float) -> dict[str, Any]:
        """Block until the operation is done; return its final JSON (the LRO's `response` for
        google.longrunning). Raises OperationError, ApiError or DeadlineExceeded."""
        if op.type == "compute":
            return self._compute(op, deadline)
        if op.type == "lro":
            return self._longrunning(op, deadline)
        if op.type == "dns":
            return self._dns_change(op, deadline)
        raise ValueError(f"unknown operation type {op.type!r}")

    def _poll(self, fn: Callable[[], Any], deadline: float) -> Any:
        """One poll of an operation. An operation Google has just created may read 404 for a
        moment (eventual consistency): that is "not visible yet", retried to the deadline."""
        return retry.call(fn, deadline=deadline, clock=self.clock,
                          retry_if=lambda e: e.not_found, stream=self.stream())

    def _waiting(self, long_poll: bool) -> Any:
        """A long-poll `wait` is waiting on Google, not work: the step's place is free for
        another meanwhile (a `get` is work)."""
        return self.clock.waiting() if long_poll else contextlib.nullcontext()

    def _polled(self, op: OperationRef, state: dict[str, Any]) -> None:
        if self.on_poll:
            self.on_poll(op, state)

    def _compute(self, op: OperationRef, deadline: float) -> dict[str, Any]:
        if op.zone:
            client = self.clients.compute("ZoneOperationsClient")
            scope = {"project": op.project, "zone": op.zone}
        elif op.region:
            client = self.clients.compute("RegionOperationsClient")
            scope = {"project": op.project, "region": op.region}
        else:
            client = self.clients.compute("GlobalOperationsClient")
            scope = {"project": op.project}
        request = {**scope, "operation": op.name}
        use_wait = self._fixed is None
        while True:
            # `wait` is a long poll that returns when the operation is done or after about two
            # minutes; a server without it (501) is polled with `get` instead.
            try:
                fn = client.wait if use_wait else client.get
                with self._waiting(use_wait):
                    result = self._poll(lambda fn=fn: fn(request=request), deadline)
            except ApiError as exc:
                if use_wait and exc.code == 501:
                    use_wait = False
                    continue
                raise
            state = to_json(result)
            self._polled(op, state)
            if state.get("status") == "DONE":
                errors = state.get("error", {}).get("errors", [])
                if errors:
                    first = errors[0]
                    raise OperationError(
                        op.name, first.get("message", "failed"), code=first.get("code", "")
                    )
                return state
            if not use_wait:
                self._pause(deadline, self._fixed or MAX_POLL / 4)
            elif self.clock.now() >= deadline:
                raise DeadlineExceeded(f"operation {op.name} still running at the deadline")

    def _longrunning(self, op: OperationRef, deadline: float) -> dict[str, Any]:
        svc = self.clients.discovery(op.api)
        get_id, wait_id = operation_methods(op.api, op.name)
        if self._fixed is not None:
            wait_id = None
        interval = self._fixed or FIRST_POLL
        while True:
            if wait_id:
                with self._waiting(True):
                    state = self._poll(lambda: invoke(svc, wait_id, name=op.name, body={}),
                                       deadline)
            else:
                state = self._poll(lambda: invoke(svc, get_id, name=op.name), deadline)
            self._polled(op, state)
            if state.get("done"):
                if "error" in state:
                    err = state["error"]
                    raise OperationError(
                        op.name, err.get("message", "failed"), code=str(err.get("code", ""))
                    )
                return state.get("response", {})
            if not wait_id:
                self._pause(deadline, interval)
                interval = self._fixed or min(interval * 2, MAX_POLL)
            elif self.clock.now() >= deadline:
                raise DeadlineExceeded(f"operation {op.name} still running at the deadline")

    def _dns_change(self, op: OperationRef, deadline: float) -> dict[str, Any]:
        """A Cloud DNS change set (`name` its id, `zone` its managed zone), reloaded through
        google-cloud-dns until its status is done; Cloud DNS has no wait method."""
        change = self.clients.dns(op.project).zone(op.zone).changes()
        change.name = op.name
        interval = self._fixed or FIRST_POLL
        while True:
            self._poll(change.reload, deadline)
            state = {"id": change.name, "status": change.status}
            self._polled(op, state)
            if change.status == "done":
                return state
            self._pause(deadline, interval)
            interval = self._fixed or min(interval * 2, MAX_POLL)

    def _pause(self, deadline: float, seconds: float) -> None:
        remaining = deadline - self.clock.now()
        if remaining <= 0:
            raise DeadlineExceeded("deadline passed while the operation was still running")
        self.clock.sleep(min(seconds, remaining))


def fixed_interval(poll: str) -> float | None:
    """The interval of a "fixed:N" poll setting; None for "wait". Raises ValueError."""
    if poll == WAIT:
        return None
    kind, _, seconds = poll.partition(":")
    try:
        interval = float(seconds) if kind == "fixed" else 0.0
    except ValueError:
        interval = 0.0
    if interval <= 0:
        raise ValueError(f'poll must be "wait" or "fixed:SECONDS", not {poll!r}')
    return interval


def operation_methods(api: str, name: str = "") -> tuple[str, str | None]:
    """The discovery ids of an API's operations.get and, where it has one, operations.wait;
    of those under the operation's own root ("projects/..." rather than "organizations/...")
    when an API has operations under several."""
    from google_facts import discovery

    root = name.split("/", 1)[0]
    candidates = [m for m in discovery.methods(api) if m.resource.endswith("operations")]
    under_root = [m for m in candidates if f"/{root}/" in f"/{m.flat_path}" or
                  m.flat_path.startswith(f"{root}/")]
    get_id = wait_id = None
    for m in (under_root if root and under_root else candidates):
        if m.name == "get":
            get_id = get_id or m.id
        if m.name == "wait":
            wait_id = wait_id or m.id
    if get_id is None:
        raise ValueError(f"{api} has no operations.get")
    return get_id, wait_id


def invoke(service: Any, method_id: str, **params: Any) -> Any:
    """Call a google-api-python-client method by its discovery id ("apigee.organizations.get")."""
    target = service
    # The client renames resources and methods that are Python keywords ("global_").
    parts = [p + "_" if keyword.iskeyword(p) else p for p in method_id.split(".")[1:]]
    for part in parts[:-1]:
        target = getattr(target, part)()
    try:
        request = getattr(target, parts[-1])(**params)
    except TypeError as exc:
        # The client checks each parameter against the method's pattern before sending.
        if "does not match the pattern" in str(exc):
            raise MalformedRequest(f"{method_id}: {exc}: a value the plan gave is not of the "
                                   "form Google takes there (a name where a path is, or the "
                                   "reverse)") from None
        raise
    return request.execute(num_retries=0)
