"""Pacing requests to Google's per-minute rate quotas, per quota group and consumer.

Google refuses a request over a rate quota (compute's 403 `rateLimitExceeded`, the others' 429)
and refills each group's quota every minute (google_facts/quotas.py has the groups and their
defaults). The engine retries those refusals, but a wide plan would meet them by the hundred:
instead each request first takes its place in its group's last minute for its consumer (a
project; an Apigee organization), and waits on the run's clock, giving its step's place up,
while that minute is full. A sliding minute never sends more than the limit in any of Google's
fixed, clock-aligned minutes.

The defaults are Google's; a run may name others (a project whose quota was raised or lowered,
or quota shared with other tools). Where Google still refuses (another client spends the same
quota), the limit adapts: a refusal lowers it to half of what the last minute sent, and each
minute without one raises it by a quarter, up to the configured limit.

The hook is the credentials' `before_request`, which every transport of every client library
calls before each request (see `attach`); it also logs each request's method and URL at debug
level (`--verbosity debug`), never its headers or body, which carry credentials and secrets.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from google_facts import discovery
from google_facts.quotas import APIS, DEFAULTS, MINUTE, consumer_of, group_of, unknown_groups
from google_facts.routing import Router

LOG = logging.getLogger("provision.requests")
_last = threading.local()  # the quota this thread's last request spent: (pacer, key)


class _Minute:
    """What one (group, consumer) sent in the last minute, and its current limit."""

    def __init__(self, limit: int) -> None:
        self.configured = self.limit = limit
        self.sent: deque[float] = deque()
        self.calm_since = 0.0  # when the limit was last lowered
        self.lock = threading.Lock()

    def take(self, now: float, cost: int) -> float:
        """Count `cost` requests now and return 0, or return how long to wait first."""
        with self.lock:
            while self.sent and self.sent[0] <= now - MINUTE:
                self.sent.popleft()
            self._recover(now)
            over = len(self.sent) + cost - self.limit
            if over <= 0 or not self.sent:
                self.sent.extend([now] * cost)
                return 0.0
            # Once the `over` oldest have left the minute, these fit.
            return self.sent[min(over, len(self.sent)) - 1] + MINUTE - now

    def refused(self, now: float) -> None:
        with self.lock:
            recent = sum(1 for t in self.sent if t > now - MINUTE)
            # Half of what the last minute sent: other refusals of that minute's requests,
            # already under way, do not lower it again.
            self.limit = max(1, min(self.limit, recent // 2))
            self.calm_since = now

    def _recover(self, now: float) -> None:
        if self.limit >= self.configured:
            return
        minutes = int((now - self.calm_since) // MINUTE)
        for _ in range(min(minutes, 64)):
            self.limit = min(self.configured, self.limit + max(1, self.limit // 4))
        if minutes > 0:
            self.calm_since += minutes * MINUTE


class Pacer:
    """Paces the requests to `roots(api)` (an API's root URL, None for Google's own) on
    `clock()`, the run's clock, to `limits` per minute (group -> requests; Google's defaults
    for groups not named)."""

    def __init__(self, clock: Callable[[], Any], roots: Callable[[str], str | None],
                 limits: Mapping[str, int] | None = None) -> None:
        problem = unknown_groups(dict(limits or {}))
        if problem:
            raise ValueError(problem)
        bad = sorted(g for g, n in (limits or {}).items() if n < 1)
        if bad:
            raise ValueError(f"quota {bad[0]}: a limit is at least 1 request a minute")
        self.limits = {**DEFAULTS, **(limits or {})}
        self._clock = clock
        self._roots = {api: (roots(api) or f"https://{api}.googleapis.com").rstrip("/") + "/"
                       for api in APIS}
        self._routers: dict[str, Router] = {}
        self._minutes: dict[tuple[str, str], _Minute] = {}
        self._lock = threading.Lock()

    def before(self, http_method: str, url: str) -> None:
        """Wait until the request to `url` fits its quota's minute, and count it."""
        _last.spent = None
        found = self._classify(http_method, url)
        if found is None:
            return
        key, cost = found
        with self._lock:
            minute = self._minutes.get(key)
            if minute is None:
                minute = self._minutes[key] = _Minute(self.limits[key[0]])
        _last.spent = (self, key)
        clock = self._clock()
        while (wait := minute.take(clock.now(), cost)) > 0:
            clock.sleep(wait)

    def refused(self, key: tuple[str, str]) -> None:
        with self._lock:
            minute = self._minutes.get(key)
        if minute is not None:
            minute.refused(self._clock().now())

    def limit(self, group: str, consumer: str) -> int:
        """The limit in force for a group and consumer (after any refusals)."""
        with self._lock:
            minute = self._minutes.get((group, consumer))
        return minute.limit if minute else self.limits[group]

    def _classify(self, http_method: str, url: str) -> tuple[tuple[str, str], int] | None:
        api = next((api for api, root in self._roots.items() if url.startswith(root)), None)
        if api is None:
            return None
        path = urlsplit(url).path[len(urlsplit(self._roots[api]).path):]
        router = self._routers.get(api)
        if router is None:
            router = self._routers[api] = Router(discovery.methods(api))
        match = router.match(http_method.upper(), path)
        if match is None:
            return None
        counted = group_of(match.method)
        consumer = consumer_of(match.segments)
        if counted is None or consumer is None:
            return None
        group, cost = counted
        return (group, consumer), cost


def refused() -> None:
    """Google refused this thread's last request over a rate quota: lower that quota's limit."""
    spent = getattr(_last, "spent", None)
    if spent is not None:
        pacer, key = spent
        pacer.refused(key)


def attach(credentials: Any, pacer: Pacer) -> None:
    """Pace every request made with `credentials` (google.auth's hook, called by every
    transport before each request: requests, httplib2, and so every client library)."""
    before_request = credentials.before_request

    def paced(request: Any, method: str, url: str, headers: Any) -> None:
        pacer.before(method, url)
        LOG.debug("%s %s", method, url)
        before_request(request, method, url, headers)

    credentials.before_request = paced
