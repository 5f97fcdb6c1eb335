"""The installed version, and the user agent every client sends to Google with it."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("provision")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"

# Google's API logs and quota reports name the tool by this (gcloud sends `gcloud/VERSION`).
USER_AGENT = f"provision/{VERSION}"
