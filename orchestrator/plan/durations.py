"""Step timeouts: "90s", "10m", "1h", "1h30m", or a number of seconds."""

from __future__ import annotations

import math
import re

MAX_SECONDS = 7 * 24 * 3600.0
PATTERN = r"^([0-9]+(\.[0-9]+)?[hms])+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([hms])")
_WHOLE = re.compile(PATTERN)
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: object) -> float:
    """Seconds. Raises ValueError with a message fit for the user."""
    if isinstance(value, bool):
        raise ValueError(_HELP)
    if isinstance(value, int) and value > MAX_SECONDS:
        raise ValueError("must be at most 7 days")  # before float(), which overflows on huge ints
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 40 and _WHOLE.match(value):
        seconds = sum(float(n) * _UNIT[u] for n, u in _PART.findall(value))
    else:
        raise ValueError(_HELP)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be more than 0 seconds; {_HELP}")
    if seconds > MAX_SECONDS:
        raise ValueError("must be at most 7 days")
    return seconds


_HELP = 'write a duration such as "90s", "10m", "1h" or "1h30m", or a number of seconds'
