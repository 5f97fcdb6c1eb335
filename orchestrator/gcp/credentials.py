"""Credentials: Application Default Credentials, optional impersonation and quota project;
anonymous on the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.auth.credentials import AnonymousCredentials

from orchestrator.gcp.clock import CLOCK_HEADER

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


class EmulatorCredentials(AnonymousCredentials):
    """No credentials, and the clock session of the calling thread when it holds a token of a
    virtual clock: a request the emulator parks (a long poll) gives the token back meanwhile.
    Credentials are the client libraries' hook on every request, whatever their transport."""

    def __init__(self, clock_session: Callable[[], str | None]) -> None:
        super().__init__()
        self._clock_session = clock_session

    def before_request(self, request: Any, method: str, url: str, headers: Any) -> None:
        session = self._clock_session()
        if session is not None:
            headers[CLOCK_HEADER] = session


def resolve_credentials(
    *,
    emulator: bool,
    impersonate: str | None = None,
    quota_project: str | None = None,
    clock_session: Callable[[], str | None] = lambda: None,
) -> Any:
    if emulator:
        return EmulatorCredentials(clock_session)
    import google.auth

    creds, _ = google.auth.default(scopes=[CLOUD_PLATFORM], quota_project_id=quota_project)
    if impersonate:
        from google.auth import impersonated_credentials

        creds = impersonated_credentials.Credentials(
            source_credentials=creds, target_principal=impersonate, target_scopes=[CLOUD_PLATFORM],
            # The API calls are made with these: without it they would bill the service
            # account's project, not the one the user named.
            quota_project_id=quota_project,
        )
    return creds
