"""Time as the engine sees it, in Google's seconds, so that deadlines and poll intervals keep
their meaning on an emulator.

`WallClock` is real time (Google, or an emulator at a time scale: 0.001 makes a 10 s poll
interval 10 ms). `SimulatedClock` is an emulator's virtual clock (see
provision_emulator/clock.py), on which simulated time moves only when every participant
waits. The engine therefore says when it works and when it waits:

- `busy()`: this thread works (an engine command, its lease renewer);
- `sleep(s)`: it waits on the clock (a poll interval, a backoff), giving its token back;
- `idle()`: it blocks on other participants (the scheduler on its steps), which hold tokens of
  their own until it has taken its own again;
- `grant()` / `adopt(token)` / `retire(token)`: a token made by the scheduler for a step, held
  by the step's thread while it runs and by the step's result until the scheduler has seen it,
  so that no moment passes between one step ending and the next starting in which the clock
  could jump;
- `lock()`: a lock that hands its holder's place, and a token, to the next waiter;
- `places(n)` / `occupying(place)` / `waiting()`: a new step starts only while fewer than n
  are at work; one that sleeps on the clock, or waits in a long-poll request, is not at work
  until it wakes (a step waiting on Google does not keep others from starting);
- `wait(event, s)` / `set(event)`: a sleep that another thread can cut short.

On a WallClock these cost nothing.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

# The header that tells a virtual-clock emulator which session's token a request holds.
CLOCK_HEADER = "X-Provision-Clock"


class Token:
    """A token of a simulated clock, made by `grant` for another thread."""


class _Placed:
    """What both clocks do alike with a scheduler's places (see Places): a thread's place is
    kept in the clock's thread-local state, and a sleep gives it up."""

    _local: threading.local

    def places(self, n: int) -> Places:
        return Places(self, n)

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Around a request that waits on Google (an operation's long-poll `wait`): the
        thread's place is free meanwhile, as in a sleep."""
        with _away(self._local):
            yield

    @contextmanager
    def occupying(self, place: Places | None) -> Iterator[None]:
        self._local.place = place
        try:
            yield
        finally:
            self._local.place = None
            if place is not None:
                place.leave()


class WallClock(_Placed):
    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._local = threading.local()

    def now(self) -> float:
        return time.monotonic() / self.scale

    def time(self) -> float:
        """Unix seconds, as the cloud's timestamps count them."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with _away(self._local):
                time.sleep(seconds * self.scale)

    def jitter(self, stream: str) -> float:
        """A draw in [0, 1) for the backoff of `stream` (a step)."""
        return random.random()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Sleep until `event` is set (with `set`) or `seconds` have passed; whether it is
        set."""
        return event.wait(max(0.0, seconds) * self.scale)

    def set(self, event: threading.Event) -> None:
        event.set()

    @contextmanager
    def busy(self) -> Iterator[None]:
        yield

    @contextmanager
    def idle(self) -> Iterator[None]:
        yield

    def grant(self) -> Token | None:
        return None

    @contextmanager
    def adopt(self, token: Token | None) -> Iterator[None]:
        yield

    def retire(self, token: Token | None) -> None:
        pass

    def lock(self) -> Any:
        return threading.Lock()

    def header(self) -> str | None:
        return None

    def close(self) -> None:
        pass


class Backend(Protocol):
    """Where a SimulatedClock's tokens are counted: the emulator's VirtualClock."""

    session: str

    def now(self) -> float: ...
    def hold(self) -> None: ...
    def release(self) -> None: ...
    def sleep_until(self, until: float, holding: bool, name: str | None = None) -> None: ...
    def wake(self, name: str) -> None: ...
    def close(self) -> None: ...


class SimulatedClock(_Placed):
    def __init__(self, backend: Backend, seed: int = 0) -> None:
        self._backend = backend
        self._local = threading.local()
        # Jitter from a seeded generator per stream (a step): a step's backoffs, and so its
        # requests and their times, are the same every run, at any parallelism.
        self._seed = seed
        self._streams: dict[str, random.Random] = {}
        self._streams_lock = threading.Lock()

    def jitter(self, stream: str) -> float:
        with self._streams_lock:
            rng = self._streams.get(stream)
            if rng is None:
                rng = self._streams[stream] = random.Random(f"{self._seed}/{stream}")
            return rng.random()

    def _held(self) -> bool:
        return getattr(self._local, "held", False)

    def _set_held(self, held: bool) -> None:
        self._local.held = held

    def now(self) -> float:
        return self._backend.now()

    def time(self) -> float:
        return self._backend.now()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with _away(self._local):
                self._backend.sleep_until(self.now() + seconds, self._held())

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if not event.is_set() and seconds > 0:
            until = self.now() + seconds
            self._backend.sleep_until(until, self._held(), self._name(event))
        return event.is_set()

    def set(self, event: threading.Event) -> None:
        event.set()
        self._backend.wake(self._name(event))

    def _name(self, event: threading.Event) -> str:
        return f"{self._backend.session}/{id(event)}"

    @contextmanager
    def busy(self) -> Iterator[None]:
        if self._held():
            yield
            return
        self._backend.hold()
        self._set_held(True)
        try:
            yield
        finally:
            self._set_held(False)
            self._backend.release()

    @contextmanager
    def idle(self) -> Iterator[None]:
        if not self._held():
            yield
            return
        self._set_held(False)
        self._backend.release()
        try:
            yield
        finally:
            self._backend.hold()
            self._set_held(True)

    def grant(self) -> Token | None:
        self._backend.hold()
        return Token()

    @contextmanager
    def adopt(self, token: Token | None) -> Iterator[None]:
        if token is None:
            yield
            return
        self._set_held(True)
        try:
            yield
        finally:
            self._set_held(False)

    def retire(self, token: Token | None) -> None:
        if token is not None:
            self._backend.release()

    def lock(self) -> HandoffLock:
        return HandoffLock(self)

    def header(self) -> str | None:
        return self._backend.session if self._held() else None

    def close(self) -> None:
        self._backend.close()


class HandoffLock:
    """A lock whose waiters give their token back while they wait and whose holder, on
    release, gives the next waiter a token before waking it."""

    def __init__(self, clock: SimulatedClock) -> None:
        self._clock = clock
        self._mutex = threading.Lock()
        self._taken = False
        self._queue: deque[tuple[threading.Event, bool]] = deque()

    def __enter__(self) -> HandoffLock:
        with self._mutex:
            if not self._taken:
                self._taken = True
                return self
            turn, held = threading.Event(), self._clock._held()
            self._queue.append((turn, held))
        if held:
            self._clock._set_held(False)
            self._clock._backend.release()
        turn.wait()
        if held:
            self._clock._set_held(True)  # with the token its releaser gave it
        return self

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            if not self._queue:
                self._taken = False
                return
            turn, held = self._queue.popleft()
            if held:
                self._clock._backend.hold()
        turn.set()


@contextmanager
def _away(local: threading.local) -> Iterator[None]:
    """Around a sleep or a wait: the thread's place, if it has one, is free meanwhile (once:
    a backoff inside a wait is already away)."""
    place = getattr(local, "place", None)
    if place is None:
        yield
        return
    local.place = None
    place.leave()
    try:
        yield
    finally:
        place.enter()
        local.place = place


class Places:
    """`n` places for threads at work (a scheduler's steps). The scheduler `take`s one for each
    step it starts, only while fewer than n are at work; a step's thread gives its place up
    while it sleeps on the clock and is back at work when it wakes (at once: its poll is made
    when it would have been, so a run makes the same requests at any parallelism), and gives it
    up when it ends. A freed place wakes the scheduler (`wake`) with a token it retires once it
    has started what it could (`tokens`), so that no moment passes between a place freeing
    and the next step starting in which a simulated clock could jump."""

    def __init__(self, clock: Any, n: int) -> None:
        self._clock = clock
        self._n = n
        self._at_work = 0
        self._mutex = threading.Lock()
        self._tokens: list[Token | None] = []
        self.wake: Future[None] = Future()

    def take(self) -> bool:
        """A place for a new step, if fewer than n are at work."""
        with self._mutex:
            if self._at_work < self._n:
                self._at_work += 1
                return True
            return False

    def tokens(self) -> list[Token | None]:
        """The tokens handed over with wake-ups since last asked (the caller retires them), and
        a fresh `wake`."""
        with self._mutex:
            out, self._tokens = self._tokens, []
            if self.wake.done():
                self.wake = Future()
            return out

    def leave(self) -> None:
        with self._mutex:
            self._at_work -= 1
            if self._at_work < self._n:
                self._tokens.append(self._clock.grant())
                if not self.wake.done():
                    self.wake.set_result(None)

    def enter(self) -> None:
        with self._mutex:
            self._at_work += 1


class LocalBackend:
    """An in-process emulator's VirtualClock, called directly."""

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self.session: str = clock.session("engine-")

    def now(self) -> float:
        return self._clock.now()

    def hold(self) -> None:
        self._clock.hold(self.session)

    def release(self) -> None:
        self._clock.release(self.session)

    def sleep_until(self, until: float, holding: bool, name: str | None = None) -> None:
        self._clock.sleep_until(until, self.session if holding else None, name)

    def wake(self, name: str) -> None:
        self._clock.wake(name)

    def close(self) -> None:
        self._clock.drop(self.session)


class ClockError(RuntimeError):
    """The emulator's clock could not be reached or refused a call."""


class RemoteBackend:
    """A standalone emulator's VirtualClock, over its admin API (`/_emulator/clock`). The
    session lives as long as one request this process keeps open: if the process dies, the
    emulator sees the connection close and lets its tokens go."""

    def __init__(self, url: str, inherited: str | None = None, now: float = 0.0) -> None:
        """inherited: a session the emulator opened for this process (a Cloud Run task it
        runs), holding one token for it and dropped when the process ends; `now` its time."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ClockError(f"{url}: the emulator's clock is served over http://HOST:PORT")
        self._host, self._port = parts.hostname, parts.port or 80
        self._local = threading.local()
        self._mutex = threading.Lock()
        self._now = now
        self._presence: http.client.HTTPConnection | None = None
        if inherited is not None:
            self.session = inherited
            return
        self._presence = http.client.HTTPConnection(self._host, self._port)
        try:
            self._presence.request("POST", "/_emulator/clock/session")
            response = self._presence.getresponse()
            if response.status != 200:
                raise ClockError(response.read().decode(errors="replace"))
            opened = json.loads(response.readline())
        except (OSError, ValueError, http.client.HTTPException) as exc:
            self._presence.close()
            raise ClockError(f"could not open a session of the emulator's clock: {exc}") from exc
        self._response = response  # kept open: the session ends with it
        self.session = str(opened["session"])
        self._seen(float(opened["now"]))

    def _seen(self, now: float) -> None:
        with self._mutex:
            # While this process holds a token the clock stands still, so the latest time any
            # answer gave is the clock's time for every thread that holds one.
            self._now = max(self._now, now)

    def _post(self, path: str, body: dict[str, Any]) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self._host, self._port)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = json.loads(response.read() or b"{}")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            conn.close()
            self._local.conn = None
            raise ClockError(f"the emulator's clock did not answer {path}: {exc}") from exc
        if response.status != 200:
            raise ClockError(f"the emulator's clock refused {path}: {data}")
        self._seen(float(data["now"]))

    def now(self) -> float:
        return self._now

    def hold(self) -> None:
        self._post("/_emulator/clock/hold", {"session": self.session})

    def release(self) -> None:
        self._post("/_emulator/clock/release", {"session": self.session})

    def sleep_until(self, until: float, holding: bool, name: str | None = None) -> None:
        session = self.session if holding else None
        self._post("/_emulator/clock/sleep", {"until": until, "session": session, "name": name})

    def wake(self, name: str) -> None:
        self._post("/_emulator/clock/wake", {"name": name})

    def close(self) -> None:
        if self._presence is not None:
            self._presence.close()


# Set by the emulator for a process it runs as a Cloud Run task: the clock session, holding a
# token for the process, that its first clock takes over (see for_emulator).
INHERITED_SESSION = "PROVISION_CLOCK_SESSION"


def for_emulator(url: str) -> WallClock | SimulatedClock:
    """The clock to use with the emulator at `url`: its virtual clock when it has one, else
    the wall clock at the emulator's time scale.

    In a process the emulator runs (a Cloud Run task), the first clock made takes over the
    session the emulator opened for it, whose token the calling thread then holds: simulated
    time stands still from the process's start, and moves only while it waits."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=30)
    try:
        conn.request("GET", "/_emulator/clock")
        response = conn.getresponse()
        described = json.loads(response.read()) if response.status == 200 else {}
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise ClockError(f"could not reach the emulator at {url}: {exc}") from exc
    finally:
        conn.close()
    if described.get("mode") == "virtual":
        inherited = os.environ.pop(INHERITED_SESSION, None)
        if inherited:
            clock = SimulatedClock(
                RemoteBackend(url, inherited, float(described.get("now", 0.0))))
            clock._set_held(True)
            return clock
        return SimulatedClock(RemoteBackend(url))
    return WallClock(float(described.get("scale", 1.0)))


Clock = WallClock | SimulatedClock
