"""Group commit: the changes staged while one write is on its way to disk go out together in the
next, so a write costs once per burst, not once per change, and no caller holds a lock while it
waits for the disk (or for Cloud Storage).

Callers stage in the order they changed the ledger; a write takes everything staged so far, in
that order. Whoever waits first for a change not yet written does the write (no writer thread to
start or stop); the others wait for it, and each learns whether the write carrying its own
change succeeded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Batch(Generic[T]):
    def __init__(self) -> None:
        self.items: list[T] = []
        self.done = False
        self.error: BaseException | None = None


class Staged:
    """A staged change: `wait()` returns once it is durable, or raises why it is not."""

    def __init__(self, wait: Callable[[], None]) -> None:
        self._wait = wait

    def wait(self) -> None:
        self._wait()


class GroupCommit(Generic[T]):
    """write(items) makes a batch of staged items durable, in order; it is never called twice at
    once."""

    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._changed = threading.Condition()
        self._open: _Batch[T] = _Batch()
        self._writing = False

    def stage(self, item: T) -> Staged:
        with self._changed:
            batch = self._open
            batch.items.append(item)
        return Staged(lambda: self._wait(batch))

    def flush(self) -> None:
        """Waits until everything staged so far is durable."""
        with self._changed:
            batch = self._open
        if batch.items:
            self._wait(batch)

    def _wait(self, batch: _Batch[T]) -> None:
        with self._changed:
            while not batch.done:
                if self._writing:
                    self._changed.wait()
                    continue
                # No write under way: this caller writes everything staged so far (its own
                # change among it), while later changes gather in a new batch.
                current, self._open, self._writing = self._open, _Batch(), True
                self._changed.release()
                try:
                    self._write(current.items)
                except BaseException as exc:
                    current.error = exc
                finally:
                    self._changed.acquire()
                    current.done, self._writing = True, False
                    self._changed.notify_all()
        if batch.error is not None:
            raise batch.error
