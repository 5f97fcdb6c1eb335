"""Injected faults, deterministic for a seed.

Every decision draws from a generator seeded with (seed, the request's draw key, purpose). The
draw key names the request by what it asks, not by when it arrives: its method, the resource it
acts on (for an operation's poll, the resource the operation acts on) and how many such requests
came before it. So the same requests meet the same faults in whatever order they arrive: at any
parallelism, a run meets the faults it met one step at a time.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from provision_emulator.errors import ApiError


@dataclass(frozen=True)
class Faults:
    """Fault configuration. Fractions are in [0, 1]; `*_delay` and `latency` are simulated
    seconds (on a scaled clock, x time scale): a request's latency is time on the clock like
    any other, so on the virtual clock it costs no real time."""

    latency: float = 0.0  # added to every API request
    latency_jitter: float = 0.0  # plus a uniform draw in [0, jitter)
    rate_limit: float = 0.0  # fraction answered 429 RESOURCE_EXHAUSTED with Retry-After
    retry_after: int = 1  # seconds, in the Retry-After header of those 429s
    unavailable: float = 0.0  # fraction answered 503 UNAVAILABLE
    quota: float = 0.0  # fraction answered 403 rateLimitExceeded (a per-minute quota)
    operation_failure: float = 0.0  # fraction of long-running operations that end in error
    consistency_delay: float = 0.0  # a created resource reads 404 this long after it appears
    iam_delay: float = 0.0  # a set IAM policy reads back as the old one this long
    # A request whose body sets this field is refused 400, quoting the field's value as
    # Google's "Invalid value for field 'resource.X': 'VALUE'" answers do: a secret in it
    # comes back in the error, which the client must not write down.
    echo_field: str = ""
    methods: tuple[str, ...] = ()  # method-id patterns ("compute.*.insert"); empty: all methods
    # Service attachment paths (patterns) whose producer lacks capacity: Apigee endpoint
    # attachments connected to them read ACCEPTED_LIMITED_CAPACITY, "accepted by the PSC
    # producer, but it will only serve capacity limited traffic" (apigee v1 discovery,
    # GoogleCloudApigeeV1EndpointAttachment.connectionState). What limits a producer's capacity
    # is not in any API Google documents, so the state is injected, not derived.
    limited_capacity: tuple[str, ...] = ()

    def updated(self, changes: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        lists = {k: tuple(v) for k, v in changes.items() if k in _LISTS}
        return replace(self, **{**changes, **lists})

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if k in _LISTS else v for k, v in asdict(self).items()}

    def applies_to(self, method_id: str) -> bool:
        return not self.methods or any(fnmatch.fnmatchcase(method_id, p) for p in self.methods)


_LISTS = ("methods", "limited_capacity")


def has_limited_capacity(faults: Faults, attachment_path: str) -> bool:
    return any(fnmatch.fnmatchcase(attachment_path, p) for p in faults.limited_capacity)


def _rng(seed: int, key: str, purpose: str) -> random.Random:
    return random.Random(f"{seed}/{key}/{purpose}")


def echoed(faults: Faults, method_id: str, body: Any) -> ApiError | None:
    """The refusal quoting `echo_field`, for a request whose body sets it."""
    field = faults.echo_field
    if not field or not faults.applies_to(method_id) or not isinstance(body, dict):
        return None
    if field not in body:
        return None
    return ApiError(400, f"Invalid value for field 'resource.{field}': '{body[field]}'. "
                    "The value is not accepted.", reason="invalid")


def latency(faults: Faults, seed: int, key: str) -> float:
    if not faults.latency and not faults.latency_jitter:
        return 0.0
    return faults.latency + faults.latency_jitter * _rng(seed, key, "latency").random()


def request_error(faults: Faults, seed: int, key: str, method_id: str) -> ApiError | None:
    """The transient error this request meets, if any."""
    if not faults.applies_to(method_id):
        return None
    draw = _rng(seed, key, "request").random()
    if draw < faults.rate_limit:
        return ApiError(
            429,
            "Too many requests. Please retry after some time.",
            reason="rateLimitExceeded",
            headers={"Retry-After": str(faults.retry_after)},
        )
    draw -= faults.rate_limit
    if draw < faults.unavailable:
        return ApiError(503, "The service is currently unavailable.", reason="backendError")
    draw -= faults.unavailable
    if draw < faults.quota:
        return ApiError(
            403,
            f"Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of "
            f"service '{method_id.split('.')[0]}.googleapis.com'.",
            reason="rateLimitExceeded",
            domain="usageLimits",
            status="RESOURCE_EXHAUSTED",
        )
    return None


def operation_fails(faults: Faults, seed: int, key: str, method_id: str) -> bool:
    if not faults.operation_failure or not faults.applies_to(method_id):
        return False
    return _rng(seed, key, "operation").random() < faults.operation_failure
