"""Per-minute rate quotas per project, as Google enforces them; off unless configured.

"Google enforces rate quotas at a per-minute (60 seconds) interval for each group ... the quota
should be refilled at the start of the next interval", fixed and clock-aligned: "if a project
reaches a quota limit at 10:00:15, the quota refills at the start of the next synchronized
interval, such as 10:01:00" (https://cloud.google.com/compute/api-quota). Minutes are simulated
ones; counters are not saved with the cloud.

The groups, and their defaults where Google states one:
- compute: "read" (gets, lists, operation gets, and the POST reads), "write" (every mutation),
  "heavy" (heavy-weight reads: regionOperations.wait, zoneOperations.wait and aggregatedList,
  per the same page). The current page names no defaults; its earlier version gave 1,500
  requests a minute for queries, reads, lists and operation reads, and its 2019 version 10 a
  second for heavy-weight reads: 1,500, 1,500 and 600 here. Google now also counts per
  region; the emulator counts per project only.
- serviceusage: "read" 240 and "write" 60 a minute, "A batchEnable call counts as 5 write
  calls" (https://cloud.google.com/service-usage/docs/quotas).
- apigee: "request", "User, service account, or Apigee UI initiated: 6,000 per minute"
  (https://cloud.google.com/apigee/docs/api-platform/reference/limits), counted per
  organization.

The answers are Google's: compute's "403 error with the reason rateLimitExceeded" (the
api-quota page), the others' 429 RESOURCE_EXHAUSTED, each with the message Google's errors
quote ("Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of
service 'compute.googleapis.com' for consumer 'project_number:N'.", observed in
scylladb/scylla-cluster-tests#7940 and hashicorp/terraform-provider-google#8360) and the
RATE_LIMIT_EXCEEDED ErrorInfo (google/api/error_reason.proto). No Retry-After: none of Google's
quoted answers carries one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from google_facts.discovery import Method
from provision_emulator import catalog
from provision_emulator.errors import ApiError

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

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
_HEAVY = ("compute.regionOperations.wait", "compute.zoneOperations.wait")
_BATCH_ENABLE = "serviceusage.services.batchEnable"


def group_of(method: Method) -> tuple[str, int] | None:
    """The quota group a method counts against, and how many requests it counts as."""
    api = method.api
    if api == "compute":
        if method.id in _HEAVY or method.name == "aggregatedList":
            return "compute.heavy", 1
        return ("compute.write" if catalog.is_mutating(method) else "compute.read"), 1
    if api == "serviceusage":
        if method.id == _BATCH_ENABLE:
            return "serviceusage.write", 5
        return ("serviceusage.write" if catalog.is_mutating(method) else "serviceusage.read"), 1
    if api == "apigee":
        return "apigee.request", 1
    return None


class Quotas:
    """The limits in force (group -> requests a minute; an empty mapping: none) and what each
    project has used in the current minute."""

    def __init__(self, limits: Mapping[str, int] | None) -> None:
        unknown = set(limits or {}) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown quota groups: {', '.join(sorted(unknown))} (known: "
                             f"{', '.join(DEFAULTS)})")
        self.limits = dict(limits or {})
        self._used: dict[tuple[str, str], tuple[int, int]] = {}  # (group, consumer) -> window, n

    def charge(self, cloud: Cloud, method: Method, consumer: str | None) -> None:
        """Count the request, or refuse it as Google does when the minute's quota is spent."""
        found = group_of(method)
        if found is None or consumer is None or not self.limits:
            return
        group, cost = found
        limit = self.limits.get(group)
        if limit is None:
            return
        window = math.floor(cloud.now() / cloud.scaled(MINUTE))
        start, used = self._used.get((group, consumer), (window, 0))
        if start != window:
            used = 0
        if used + cost > limit:
            raise refusal(cloud, method.api, group, consumer, limit)
        self._used[(group, consumer)] = (window, used + cost)


def refusal(cloud: Cloud, api: str, group: str, consumer: str, limit: int) -> ApiError:
    metric, limit_name = NAMES[group]
    service = f"{api}.googleapis.com"
    number = cloud.project_number(consumer)  # an Apigee organization is named as its project
    message = (f"Quota exceeded for quota metric '{metric}' and limit '{limit_name}' of service "
               f"'{service}' for consumer 'project_number:{number}'.")
    details = [{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "RATE_LIMIT_EXCEEDED",
        "domain": "googleapis.com",
        "metadata": {"consumer": f"projects/{number}", "service": service,
                     "quota_metric": f"{service}/{group.split('.', 1)[1]}_requests",
                     "quota_limit": limit_name.replace(" ", ""),
                     "quota_limit_value": str(limit)},
    }]
    if api == "compute":
        return ApiError(403, message, reason="rateLimitExceeded", domain="usageLimits",
                        status="PERMISSION_DENIED", details=details)
    return ApiError(429, message, reason="rateLimitExceeded", status="RESOURCE_EXHAUSTED",
                    details=details)
