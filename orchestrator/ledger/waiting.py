"""Waiting for a ledger's lock, as Terraform's `-lock-timeout` does: a refused attempt is tried
again, backing off, until the timeout has passed; a timeout of 0 refuses at once.

Neither store can be told when a lock is released (a file lock polled without blocking, an object
in a bucket), so waiting is polling. Jitter keeps waiters that were refused together from all
trying again at the same moment.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from orchestrator.ledger.errors import LockHeld

T = TypeVar("T")

FIRST_RETRY = 0.1
MAX_RETRY = 2.0


def within(timeout: float, attempt: Callable[[], T]) -> T:
    """`attempt()`, tried again while it raises LockHeld until `timeout` seconds have passed;
    the last refusal is raised."""
    deadline = time.monotonic() + timeout
    delay = FIRST_RETRY
    while True:
        try:
            return attempt()
        except LockHeld:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
        time.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
        delay = min(delay * 1.5, MAX_RETRY)
