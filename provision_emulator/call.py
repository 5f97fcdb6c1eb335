"""One routed, parsed and validated API request, as rules see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google_facts.discovery import Method


@dataclass
class Call:
    method: Method
    path: str  # the resource path: servicePath, version and custom verb removed
    params: dict[str, str]  # path parameters
    verb: str = ""  # the custom verb (`:enable` -> "enable"), or ""
    query: dict[str, list[str]] = field(default_factory=dict)
    body: Any = None  # parsed JSON, enums by name (None for media uploads: see `raw`)
    raw: bytes = b""  # the request body as sent
    content_type: str = ""  # its Content-Type header, parameters (a multipart boundary) kept
    upload: bool = False  # sent to the method's media upload path
    project: str | None = None  # the project id the request concerns, when it names one
    int_enums: bool = False  # the client asked for `enum-encoding=int`
    seq: int = 0  # the request's number in the log
    draw: str = ""  # its key for fault draws (Cloud.draw_key)
    now: float = 0.0
    # The caller's clock session when it holds a token (the X-Provision-Clock header): a
    # request parked on the clock gives that token back meanwhile.
    clock_session: str | None = None

    @property
    def api(self) -> str:
        return self.method.api

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Raw:
    """A handler's answer that is not JSON (a media download)."""

    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
