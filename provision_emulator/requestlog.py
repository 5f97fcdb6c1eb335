"""The request log: what the emulator was asked, for tests and for the admin API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

LIMIT = 100_000  # entries kept; the counts keep counting past it


class RequestLog:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.seq = 0
        # Called with each entry as its request arrives, before it is answered: a test can act
        # at an exact moment of a run (a crash harness kills the client there). The entry is the
        # log's own, not a copy: a listener that keeps it sees its status once answered (a
        # crash harness kills the client at its next request after that).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def open(
        self, now: float, api: str, method_id: str, http_method: str, path: str, mutating: bool,
        user_agent: str = "",
    ) -> dict[str, Any]:
        """Log a request (its status is filled in when answered); returns the entry."""
        self.seq += 1
        entry = {
            "seq": self.seq,
            "time": now,
            "api": api,
            "method": method_id,
            "httpMethod": http_method,
            "path": path,
            "status": None,
            "mutating": mutating,
            "userAgent": user_agent,
        }
        self.entries.append(entry)
        if len(self.entries) > LIMIT:
            del self.entries[: len(self.entries) - LIMIT]
        self.counts[method_id] += 1
        for listener in self.listeners:
            listener(entry)
        return entry

    def clear(self) -> None:
        self.entries.clear()
        self.counts.clear()
        self.seq = 0
