"""Waiting for a ledger's lock, as Terraform's `-lock-timeout` does: a refused attempt is tried
again, backing off, until the timeout has passed; a timeout of 0 refuses at once.

Neither store can be told when a lock is released (a file lock polled without blocking, an object
in a bucket), so waiting is polling. Jitter keeps waiters that were refused together from all
trying again at the same moment. The wait is on the engine's clock: on an emulator's virtual
clock, the run that holds the lock goes on meanwhile.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

from orchestrator.ledger.errors import LockHeld

T = TypeVar("T")

FIRST_RETRY = 0.1
MAX_RETRY = 2.0


def within(timeout: float, attempt: Callable[[], T], clock: Any) -> T:
    """`attempt()`, tried again while it raises LockHeld until `timeout` seconds of `clock`
    have passed; the last refusal is raised."""
    deadline = clock.now() + timeout
    delay = FIRST_RETRY
    while True:
        try:
            return attempt()
        except LockHeld:
            remaining = deadline - clock.now()
            if remaining <= 0:
                raise
        clock.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
        delay = min(delay * 1.5, MAX_RETRY)
