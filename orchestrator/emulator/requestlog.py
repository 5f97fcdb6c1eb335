"""The request log: what the emulator was asked, for tests and for the admin API."""

from __future__ import annotations

from collections import Counter
from typing import Any

LIMIT = 100_000  # entries kept; the counts keep counting past it


class RequestLog:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.seq = 0

    def open(
        self, now: float, api: str, method_id: str, http_method: str, path: str, mutating: bool
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
        }
        self.entries.append(entry)
        if len(self.entries) > LIMIT:
            del self.entries[: len(self.entries) - LIMIT]
        self.counts[method_id] += 1
        return entry

    def clear(self) -> None:
        self.entries.clear()
        self.counts.clear()
        self.seq = 0
