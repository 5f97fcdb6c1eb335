"""Runs a graph of tasks with bounded parallelism, never a task before its dependencies.

Tasks are picked in the order given among those ready, so with parallelism 1 the run follows
file order exactly. A failed task stops only the tasks that depend on it, directly or not;
independent work goes on.

`parallelism` bounds the tasks at work when one starts, not those waiting: a task that waits
on Google (in an operation's long-poll `wait`) or sleeps on the clock (between polls, for a
resource to be ready, a backoff) is not at work meanwhile (`Places`), so another can start, up
to `threads_for(parallelism)` tasks under way in all; it is back at work when it wakes, its poll
on time. What bounds a wide plan on Google is then its operations and the API quotas (which
gcp/pacing.py paces requests to), not threads held while Google works. Two steps that wait for
each other (the two ends of a VPN tunnel, of a BGP session) can never fill every place and
starve their partners. With parallelism 1 no task starts while another is under way.

On a simulated clock each task runs with a token granted when it is submitted, and that token
is given back only once the scheduler has seen the task end and submitted what it unblocked:
the clock never sees a moment with nobody working between one step and the next.

Ctrl-C (KeyboardInterrupt, which Python raises in the main thread, where the scheduler waits)
stops the run gracefully, as Terraform's first interrupt does: no task starts, the tasks under
way finish and are recorded, then KeyboardInterrupt is raised again. A second Ctrl-C raises at
once, leaving the tasks under way running in their threads: the caller ends the process (their
intents are in the ledger, so the next run resumes them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from orchestrator.gcp.clock import Token, WallClock

# Tasks under way per place at work, nearly all waiting on Google: at the default parallelism
# of 8, 512 steps of a wide plan's level wait at once (a thread each, made only when needed,
# each with its connections: a bound on them as much as on threads).
WAITING_PER_PLACE = 64


def threads_for(parallelism: int) -> int:
    """The threads a run of `parallelism` may use (a caller's `workers` has this many)."""
    return 1 if parallelism <= 1 else parallelism * (1 + WAITING_PER_PLACE)


@dataclass
class Outcome:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # task -> the failed task it needed
    cancelled: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.skipped or self.cancelled)


def run_graph(
    order: Sequence[str],
    deps: dict[str, set[str]],
    task: Callable[[str], None],
    *,
    parallelism: int,
    on_skip: Callable[[str, str], None] | None = None,
    stop: threading.Event | None = None,
    workers: Executor | None = None,
    clock: Any = None,
    on_interrupt: Callable[[int], None] | None = None,
) -> Outcome:
    """Run `task(id)` for every id in `order`, each after all of `deps[id]` succeeded.

    stop: when set, no new task starts (running ones finish); the rest are reported cancelled.
    workers: threads_for(parallelism) threads to run the tasks on, kept by the caller from one
    run to the next (with their clients: see ClientFactory); by default, threads made for this
    run alone.
    clock: the engine's; the calling thread holds a token of it (see the module's note).
    on_interrupt(n): told of a first Ctrl-C, with the number of tasks under way.
    """
    clock = clock or WallClock()
    stop = stop or threading.Event()
    interrupted = False
    outcome = Outcome()
    remaining = list(order)
    done: set[str] = set()
    blocked: dict[str, str] = {}  # task -> the failed task that blocks it
    running: dict[Future[None], tuple[str, Token | None]] = {}
    seen: list[Token | None] = []  # tokens of tasks that ended, until what they unblocked starts
    places = clock.places(max(1, parallelism))
    threads = threads_for(parallelism)

    def adopting(tid: str, token: Token | None) -> None:
        with clock.adopt(token), clock.occupying(places):
            task(tid)

    with _pool(workers, threads) as pool:
        while remaining or running or seen:
            if not stop.is_set():
                for tid in list(remaining):
                    if len(running) >= threads:
                        break
                    needs = deps.get(tid, set())
                    cause = next((blocked[d] for d in needs if d in blocked), None)
                    if cause is not None:
                        remaining.remove(tid)
                        blocked[tid] = cause
                        outcome.skipped[tid] = cause
                        if on_skip:
                            on_skip(tid, cause)
                        continue
                    if needs <= done:
                        if not places.take():
                            break  # every place is at work
                        remaining.remove(tid)
                        token = clock.grant()
                        running[pool.submit(adopting, tid, token)] = (tid, token)
                    elif parallelism == 1:
                        break  # strictly file order: never jump ahead of a waiting step
            elif not running:
                outcome.cancelled.extend(remaining)
                remaining.clear()
            while seen:
                clock.retire(seen.pop())
            if not running:
                if remaining:  # only tasks whose dependencies can never finish
                    outcome.cancelled.extend(remaining)
                break
            try:
                with clock.idle():
                    finished, _ = wait([*running, places.wake], return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                stop.set()
                if on_interrupt:
                    on_interrupt(len(running))
                continue
            seen.extend(places.tokens())  # a place freed: what can start starts first
            for fut in finished:
                if fut not in running:
                    continue  # the wake-up
                tid, token = running.pop(fut)
                seen.append(token)
                exc = fut.exception()
                if exc is None:
                    done.add(tid)
                    outcome.succeeded.append(tid)
                else:
                    blocked[tid] = tid
                    outcome.failed[tid] = exc
    if interrupted:
        raise KeyboardInterrupt
    return outcome


@contextmanager
def _pool(workers: Executor | None, threads: int) -> Iterator[Executor]:
    if workers is not None:
        yield workers
        return
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="step")
    try:
        yield pool
    except BaseException:
        # A second Ctrl-C: the tasks under way are not waited for.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
