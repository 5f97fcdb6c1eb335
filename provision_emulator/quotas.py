"""Per-minute rate quotas per project, as Google enforces them; off unless configured.

The groups, what counts against each and Google's defaults are facts shared with the engine's
pacing: google_facts/quotas.py. Windows are fixed and clock-aligned ("the quota should be
refilled at the start of the next interval", "if a project reaches a quota limit at 10:00:15,
the quota refills at the start of the next synchronized interval, such as 10:01:00",
https://cloud.google.com/compute/api-quota). Minutes are simulated ones; counters are not
saved with the cloud. Google now also counts compute per region; the emulator counts per
project only.

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
from google_facts.quotas import MINUTE, NAMES, group_of, unknown_groups
from provision_emulator.errors import ApiError

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud


class Quotas:
    """The limits in force (group -> requests a minute; an empty mapping: none) and what each
    project has used in the current minute."""

    def __init__(self, limits: Mapping[str, int] | None) -> None:
        problem = unknown_groups(dict(limits or {}))
        if problem:
            raise ValueError(problem)
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
