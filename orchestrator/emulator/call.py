"""One routed, parsed and validated API request, as rules see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.discovery import Method


@dataclass
class Call:
    method: Method
    path: str  # the resource path: servicePath, version and custom verb removed
    params: dict[str, str]  # path parameters
    verb: str = ""  # the custom verb (`:enable` -> "enable"), or ""
    query: dict[str, list[str]] = field(default_factory=dict)
    body: Any = None  # parsed JSON, enums by name
    project: str | None = None  # the project id the request concerns, when it names one
    int_enums: bool = False  # the client asked for `enum-encoding=int`
    seq: int = 0  # the request's number in the log (seeds its faults)
    now: float = 0.0

    @property
    def api(self) -> str:
        return self.method.api

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default
