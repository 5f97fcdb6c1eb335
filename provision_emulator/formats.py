"""Google's textual forms for times and identifiers."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime


def rfc3339(t: float) -> str:
    """One-platform APIs: UTC with nanoseconds, `2024-05-01T10:12:13.123456789Z`."""
    dt = datetime.fromtimestamp(t, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def seconds(duration: str | None, default: float) -> float:
    """A google.protobuf.Duration in its JSON form ("2592000s", "1.5s"), or `default`."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(duration or ""))
    return float(match.group(1)) if match else default


def compute_time(t: float) -> str:
    """Compute: milliseconds and a numeric offset, `2024-05-01T03:12:13.123-07:00`."""
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds")


def digest(*parts: object) -> bytes:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()


def numeric_id(*parts: object, digits: int = 19) -> str:
    """A stable decimal id of `digits` digits (no leading zero) derived from `parts`."""
    low = 10 ** (digits - 1)
    return str(low + int.from_bytes(digest(*parts)[:12]) % (9 * low))


def fingerprint(*parts: object) -> str:
    """An 8-byte base64 fingerprint/etag, as compute and IAM use."""
    return base64.b64encode(digest(*parts)[:8]).decode()


def uuid(*parts: object) -> str:
    h = digest(*parts).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def project_number(project_id: str) -> str:
    """Every project id has a stable 12-digit number (the emulator's projects exist implicitly)."""
    return numeric_id("project", project_id, digits=12)
