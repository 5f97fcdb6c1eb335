"""Google's per-minute API rate quotas: which group a method counts against, and the defaults.

Shared by the emulator, which enforces them (provision_emulator/quotas.py), and the engine,
which paces its requests to them (orchestrator/gcp/pacing.py).

"Google enforces rate quotas at a per-minute (60 seconds) interval for each group"
(https://cloud.google.com/compute/api-quota). The groups, and their defaults where Google
states one:
- compute: "read" (gets, lists, operation gets, and the POST reads), "write" (every mutation),
  "heavy" (heavy-weight reads: regionOperations.wait, zoneOperations.wait and aggregatedList,
  per the same page). The current page names no defaults; its earlier version gave 1,500
  requests a minute for queries, reads, lists and operation reads, and its 2019 version 10 a
  second for heavy-weight reads: 1,500, 1,500 and 600 here.
- serviceusage: "read" 240 and "write" 60 a minute, "A batchEnable call counts as 5 write
  calls" (https://cloud.google.com/service-usage/docs/quotas).
- apigee: "request", "User, service account, or Apigee UI initiated: 6,000 per minute"
  (https://cloud.google.com/apigee/docs/api-platform/reference/limits), counted per
  organization.
"""

from __future__ import annotations

from collections.abc import Sequence

from google_facts.discovery import Method

MINUTE = 60.0
DEFAULTS: dict[str, int] = {
    "compute.read": 1500,
    "compute.write": 1500,
    "compute.heavy": 600,
    "serviceusage.read": 240,
    "serviceusage.write": 60,
    "apigee.request": 6000,
}
# group -> (the quota metric's display name, the limit's), as Google's messages name them
NAMES = {
    "compute.read": ("Read requests", "Read requests per minute"),
    "compute.write": ("Queries", "Queries per minute"),
    "compute.heavy": ("Heavy-weight read requests", "Heavy-weight read requests per minute"),
    "serviceusage.read": ("Read requests", "Read requests per minute"),
    "serviceusage.write": ("Mutate requests", "Mutate requests per minute"),
    "apigee.request": ("Requests", "Requests per minute"),
}
APIS = frozenset(group.split(".", 1)[0] for group in DEFAULTS)
_HEAVY = ("compute.regionOperations.wait", "compute.zoneOperations.wait")
_BATCH_ENABLE = "serviceusage.services.batchEnable"


def group_of(method: Method) -> tuple[str, int] | None:
    """The quota group a method counts against, and how many requests it counts as."""
    api = method.api
    if api == "compute":
        if method.id in _HEAVY or method.name == "aggregatedList":
            return "compute.heavy", 1
        return ("compute.write" if method.mutating else "compute.read"), 1
    if api == "serviceusage":
        if method.id == _BATCH_ENABLE:
            return "serviceusage.write", 5
        return ("serviceusage.write" if method.mutating else "serviceusage.read"), 1
    if api == "apigee":
        return "apigee.request", 1
    return None


def consumer_of(segments: Sequence[str]) -> str | None:
    """Whose quota a request to this resource path spends: its project, or for Apigee its
    organization (the path segment after `projects` or `organizations`)."""
    return next((segments[i + 1] for i, s in enumerate(segments[:-1])
                 if s in ("projects", "organizations")), None)


def unknown_groups(limits: dict[str, int] | None) -> str | None:
    """What is wrong with limits naming groups that do not exist, or None."""
    unknown = set(limits or {}) - set(DEFAULTS)
    if not unknown:
        return None
    return f"unknown quota groups: {', '.join(sorted(unknown))} (known: {', '.join(DEFAULTS)})"
