"""The emulator's time: simulated seconds, on one of two clocks.

`VirtualClock` is a discrete-event clock: time stands still while any participant works, and
jumps to the next moment someone waits for (an operation's end that a long poll waits on, an
engine's poll interval or backoff, a lease renewal) as soon as every participant is waiting.
A participant is anything that holds a token: the engine holds one for each step it runs and for
its own thread between steps, and gives it back while it sleeps on the clock or while its request
is parked on the server (the `X-Provision-Clock` header names its session). CPU load therefore
cannot spend simulated time: a deadline passes only because the simulated time really passed,
and a run takes as long as its CPU work, whatever Google's durations are. This is the
discrete-event approach of simulation frameworks and of deterministic simulation testing.

`ScaledClock` is the wall clock at a time scale (0.001 makes a 30-minute operation 1.8 s), for a
standalone emulator driven by hand, by gcloud, or by any client that does not speak the clock
protocol.

Tokens are counted per session, so that a client process that dies (its session's connection
closes) takes its tokens with it instead of stopping the clock for good.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

VIRTUAL = "virtual"
SCALED = "scaled"


@dataclass(order=True)
class _Waiter:
    until: float
    seq: int
    session: str | None = field(compare=False)
    wake: Callable[[], None] = field(compare=False)
    woken: bool = field(default=False, compare=False)
    cancelled: bool = field(default=False, compare=False)


class VirtualClock:
    """Simulated time advanced by events. Thread-safe; `park` is for the server's event loop,
    `sleep_until` for threads of this process."""

    mode = VIRTUAL

    def __init__(self, start: float | None = None) -> None:
        # The epoch is today's, so that timestamps look like today's; a fixed `start` makes two
        # runs' timestamps, and the ids the emulator derives from them, the same.
        self._now = float(int(time.time())) if start is None else float(start)
        self._mutex = threading.Lock()
        self._held: dict[str, int] = {}
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._sessions = itertools.count(1)
        # Sleeps that may be cut short, by name (see `wake`), and names woken before they slept.
        self._named: dict[str, _Waiter] = {}
        self._woken_early: set[str] = set()

    # --- reading -----------------------------------------------------------------------------

    def now(self) -> float:
        return self._now

    @staticmethod
    def scaled(simulated: float) -> float:
        return simulated

    @staticmethod
    def simulated(span: float) -> float:
        return span

    def busy(self) -> int:
        """Tokens held, all sessions together."""
        with self._mutex:
            return sum(self._held.values())

    def describe(self) -> dict[str, Any]:
        with self._mutex:
            return {
                "mode": self.mode,
                "now": self._now,
                "busy": sum(self._held.values()),
                "waiting": sum(1 for w in self._waiters if not w.cancelled),
            }

    # --- sessions and tokens -----------------------------------------------------------------

    def session(self, prefix: str = "s") -> str:
        """A new session id: the owner of some tokens, until `drop`."""
        name = f"{prefix}{next(self._sessions)}"
        with self._mutex:
            self._held[name] = 0
        return name

    def hold(self, session: str) -> float:
        """`session` takes a token: time stands still until it is released."""
        with self._mutex:
            self._held[session] = self._held.get(session, 0) + 1
            return self._now

    def release(self, session: str) -> float:
        with self._mutex:
            self._take(session)
            self._advance()
            return self._now

    def drop(self, session: str) -> None:
        """Forget a session that is gone: its tokens, and its waiters."""
        with self._mutex:
            self._held.pop(session, None)
            for w in self._waiters:
                if w.session == session:
                    w.cancelled = True
            self._advance()

    def _take(self, session: str) -> None:
        left = self._held.get(session, 0) - 1
        if left < 0:
            raise RuntimeError(f"clock session {session} released a token it does not hold")
        self._held[session] = left

    # --- waiting -----------------------------------------------------------------------------

    def _wait(
        self, until: float, session: str | None, wake: Callable[[], None], name: str | None = None
    ) -> _Waiter | None:
        """Register a waiter (under the mutex); None when `until` has already come, or when
        `name` was woken before it slept. A waiter of a session gives one of its tokens back
        meanwhile and gets it again when woken."""
        if until <= self._now:
            return None
        if name is not None and name in self._woken_early:
            self._woken_early.discard(name)
            return None
        if session is not None and not self._held.get(session):
            session = None  # not a participant (or one that was dropped): nothing to give back
        waiter = _Waiter(until, next(self._seq), session, wake)
        if session is not None:
            self._take(session)
        heapq.heappush(self._waiters, waiter)
        if name is not None:
            self._named[name] = waiter
        self._advance()
        return waiter

    def wake(self, name: str) -> None:
        """Cut the sleep called `name` short (a lease renewer told to stop), now or as soon
        as it begins."""
        with self._mutex:
            waiter = self._named.pop(name, None)
            if waiter is None or waiter.woken or waiter.cancelled:
                self._woken_early.add(name)
                return
            waiter.cancelled = True  # leaves the heap lazily
            waiter.woken = True
            if waiter.session is not None:
                self._held[waiter.session] = self._held.get(waiter.session, 0) + 1
            waiter.wake()

    def sleep_until(
        self, until: float, session: str | None = None, name: str | None = None
    ) -> float:
        """Block the calling thread until the clock reaches `until` (or `wake(name)`)."""
        event = threading.Event()
        with self._mutex:
            waiter = self._wait(until, session, event.set, name)
        if waiter is not None:
            event.wait()
            with self._mutex:
                if name is not None and self._named.get(name) is waiter:
                    del self._named[name]
        return self._now

    async def park(
        self, until: float, session: str | None = None, name: str | None = None
    ) -> None:
        """Hold a request (on the server's loop) until the clock reaches `until`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))

        with self._mutex:
            waiter = self._wait(until, session, wake, name)
        if waiter is None:
            return
        try:
            await future
        except asyncio.CancelledError:
            # The connection closed under the request. The client, if it lives on, still counts
            # the token as its own: it is given back unless the session is gone (see `drop`).
            with self._mutex:
                if not waiter.woken and waiter.session in self._held:
                    self._held[waiter.session] += 1
                waiter.cancelled = True
            raise
        finally:
            with self._mutex:
                if name is not None and self._named.get(name) is waiter:
                    del self._named[name]

    def skip(self, simulated: float) -> None:
        """Move the clock `simulated` seconds ahead at once, waking whoever waits meanwhile."""
        with self._mutex:
            self._now += simulated
            self._wake_due()
            self._advance()

    def _advance(self) -> None:
        """Under the mutex: while nobody holds a token, jump to the earliest waiter's moment
        and wake everyone due then. A woken waiter of a session gets its token back before
        anyone can see the count at zero, so the clock never runs ahead of a participant."""
        while not any(self._held.values()):
            while self._waiters and self._waiters[0].cancelled:
                heapq.heappop(self._waiters)
            if not self._waiters:
                return
            self._now = max(self._now, self._waiters[0].until)
            self._wake_due()

    def _wake_due(self) -> None:
        while self._waiters and (
            self._waiters[0].cancelled or self._waiters[0].until <= self._now
        ):
            waiter = heapq.heappop(self._waiters)
            if waiter.cancelled:
                continue
            waiter.woken = True
            if waiter.session is not None:
                self._held[waiter.session] = self._held.get(waiter.session, 0) + 1
            waiter.wake()

    # --- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "now": self._now}

    def load(self, data: dict[str, Any] | None) -> None:
        """Continue from a saved cloud's clock: its operations end on it."""
        if data and data.get("mode") == VIRTUAL:
            with self._mutex:
                self._now = float(data["now"])


class ScaledClock:
    """The wall clock, with Google's durations multiplied by `scale`."""

    mode = SCALED

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"time scale must be positive, not {scale!r}")
        self.scale = scale
        self._skipped = 0.0

    def now(self) -> float:
        return time.time() + self._skipped

    def scaled(self, simulated: float) -> float:
        return simulated * self.scale

    def simulated(self, span: float) -> float:
        return span / self.scale

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "now": self.now(), "scale": self.scale}

    def skip(self, simulated: float) -> None:
        self._skipped += self.scaled(simulated)

    async def park(
        self, until: float, session: str | None = None, name: str | None = None
    ) -> None:
        """Wait for the wall clock; a session has no token to give back, a name nothing to
        cut short."""
        delay = until - self.now()
        if delay > 0:
            await asyncio.sleep(delay)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode}

    def load(self, data: dict[str, Any] | None) -> None:
        """Wall-clock times persist as they are."""


Clock = VirtualClock | ScaledClock


def for_scale(time_scale: float | None, start: float | None = None) -> Clock:
    """The clock of an emulator configured with `time_scale`: virtual for None."""
    return VirtualClock(start) if time_scale is None else ScaledClock(time_scale)
