"""What differs between a step's desired properties and the live resource.

Only fields the plan sets are compared: server defaults and output-only fields never show
as drift. Values are compared as Google means them: a resource reference as a full URL or
a relative path is the same reference; an int64 as a JSON string or number is one number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_SINGLE_PORT_RANGE = re.compile(r"^(\d+)-\1$")
_RESOURCE_URL = re.compile(r"^https://[a-z.]+googleapis\.com/(?:compute/(?:v1|beta)/)?")


@dataclass(frozen=True)
class Change:
    field: str  # dotted path, "routingConfig.routingMode"
    desired: Any
    live: Any

    @property
    def top(self) -> str:
        return self.field.split(".", 1)[0].split("[", 1)[0]


def diff(desired: dict[str, Any], live: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    _diff(desired, live, "", changes)
    return changes


def _diff(desired: Any, live: Any, path: str, out: list[Change]) -> None:
    if isinstance(desired, dict):
        live_map = live if isinstance(live, dict) else {}
        if not isinstance(live, dict) and desired:
            out.append(Change(path, desired, live))
            return
        for key, value in desired.items():
            _diff(value, live_map.get(key), f"{path}.{key}" if path else key, out)
        return
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            if desired or live:
                out.append(Change(path, desired, live))
            return
        before = len(out)
        for i, (d, v) in enumerate(zip(desired, live, strict=True)):
            _diff(d, v, f"{path}[{i}]", out)
        if len(out) > before:
            # A list changes as a whole in every Google API: report it once.
            del out[before:]
            out.append(Change(path, desired, live))
        return
    if not same_value(desired, live):
        out.append(Change(path, desired, live))


def same_value(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    if live is None:
        # Google omits false, zero and empty values from its JSON.
        return desired in (False, 0, "", [], {})
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    if isinstance(desired, (int, str)) and isinstance(live, (int, str)):
        if str(desired) == str(live):
            return True
        # Google answers a single port as a range: portRange "443" reads back "443-443".
        if _SINGLE_PORT_RANGE.match(str(live)) and str(live).split("-")[0] == str(desired):
            return True
        if isinstance(desired, str) and isinstance(live, str) and "/" in desired:
            a, b = _reference(desired), _reference(live)
            # Compute accepts project-relative references ("global/networks/n").
            return a == b or b.endswith("/" + a) or a.endswith("/" + b)
    return False


def _reference(value: str) -> str:
    return _RESOURCE_URL.sub("", value)
