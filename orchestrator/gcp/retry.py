"""The retry policy: every Google call the engine makes goes through `call`.

Retries are bounded by the step's deadline, not by a count (a count either gives up on a
throttled API too soon or keeps a doomed apply alive for twenty minutes), and honour
Retry-After when Google sends it; a refusal over a rate quota also slows the pacing of its quota
(pacing.py). Backoff is exponential with full jitter (tenacity's
wait_random_exponential), the jitter drawn from the clock, so that runs on a virtual clock
repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import tenacity

from orchestrator.gcp import pacing
from orchestrator.gcp.clock import WallClock
from orchestrator.gcp.errors import ApiError, DeadlineExceeded, OperationError, from_exception

T = TypeVar("T")
LOG = logging.getLogger("provision.retry")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, OperationError):
        return exc.retryable
    api = from_exception(exc)
    return api is not None and api.retryable


def call(
    fn: Callable[[], T],
    *,
    deadline: float,
    retry_if: Callable[[ApiError], bool] | None = None,
    clock: Any = None,
    stream: str = "",
) -> T:
    """Run `fn`, retrying transient Google errors until `deadline` (a `clock.now()` value).

    retry_if: an extra predicate for errors a caller knows to be transient in its context
    (a delete blocked by a dependent that is itself being deleted, an IAM etag conflict).
    stream: whose backoff this is (the step), for the clock's jitter.
    Raises ApiError (Google's own message) or DeadlineExceeded.
    """

    def should_retry(state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return False
        if is_retryable(exc):
            return True
        api = from_exception(exc)
        return bool(api is not None and retry_if is not None and retry_if(api))

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        api = from_exception(exc) if exc else None
        if api and api.rate_quota:
            pacing.refused()
        if api and api.retry_after is not None:
            delay = float(api.retry_after)
        else:
            ceiling = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (state.attempt_number - 1))
            delay = clock.jitter(stream) * ceiling
        return max(0.0, min(delay, deadline - clock.now()))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        # Google's code and status only: its message may quote what was sent (a secret).
        exc = state.outcome.exception() if state.outcome else None
        api = from_exception(exc) if exc else None
        LOG.info("%s: %s; retry %d in %.1f s", stream or "request",
                 f"HTTP {api.code} {api.status or ''}".strip() if api else type(exc).__name__,
                 state.attempt_number, state.next_action.sleep if state.next_action else 0.0)

    def stop(state: tenacity.RetryCallState) -> bool:
        return clock.now() >= deadline

    clock = clock or WallClock()
    retrying = tenacity.Retrying(
        retry=should_retry, wait=wait, stop=stop, sleep=clock.sleep, reraise=True,
        before_sleep=before_sleep,
    )
    try:
        return retrying(fn)
    except Exception as exc:
        api = from_exception(exc)
        if clock.now() >= deadline and is_retryable(exc):
            raise DeadlineExceeded(f"deadline passed; last error: {api or exc}") from exc
        if api is not None and api is not exc:
            raise api from exc
        raise
