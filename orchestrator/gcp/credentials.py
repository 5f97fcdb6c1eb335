"""Credentials: Application Default Credentials, optional impersonation and quota project;
anonymous on the emulator."""

from __future__ import annotations

from typing import Any

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def resolve_credentials(
    *, emulator: bool, impersonate: str | None = None, quota_project: str | None = None
) -> Any:
    if emulator:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    import google.auth

    creds, _ = google.auth.default(scopes=[CLOUD_PLATFORM], quota_project_id=quota_project)
    if impersonate:
        from google.auth import impersonated_credentials

        creds = impersonated_credentials.Credentials(
            source_credentials=creds, target_principal=impersonate, target_scopes=[CLOUD_PLATFORM]
        )
    return creds
