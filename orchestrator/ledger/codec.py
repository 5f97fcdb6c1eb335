"""The ledger's bytes, the same in every store.

The file is the canonical JSON of the ledger (sorted keys, no spaces, UTF-8) with one more key,
`checksum`, first: "sha256:" + the hex SHA-256 of the canonical JSON of everything else. The
checksum is checked against the parsed content re-serialised canonically, not against the raw
bytes, so a tool that only re-indents the file (jq, an editor) leaves it valid, while any change to
a value is caught. This envelope stays the same in every future format, so that a newer ledger is
reported as newer, not as corrupt.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator.ledger.errors import LedgerCorrupt, LedgerError
from orchestrator.ledger.model import FORMAT, Ledger

_CHECKSUM = "sha256:"


def canonical_json(value: Any) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON, and another reader would reject them.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def spec_fingerprint(spec: dict[str, Any]) -> str:
    """The fingerprint of an applied spec (secrets already replaced by keyed fingerprints)."""
    return _CHECKSUM + hashlib.sha256(canonical_json(spec)).hexdigest()


def encode(ledger: Ledger, serial: int) -> bytes:
    """The file for `ledger` as written with `serial` (the store decides the serial)."""
    content = ledger.to_dict()
    content["serial"] = serial
    body = canonical_json(content)
    checksum = _CHECKSUM + hashlib.sha256(body).hexdigest()
    # "checksum" sorts before every other key, so this is the canonical JSON of the whole file.
    return b'{"checksum":"' + checksum.encode() + b'",' + body[1:] + b"\n"


def decode(data: bytes, location: str, backup: str | None = None) -> Ledger:
    """The ledger in `data`, or LedgerCorrupt naming `location` (and `backup`, to restore)."""

    def corrupt(reason: str) -> LedgerCorrupt:
        return LedgerCorrupt(location, reason, backup)

    if not data.strip():
        raise corrupt("the file is empty")
    try:
        content = json.loads(data.decode())
    except UnicodeDecodeError:
        raise corrupt("the file is not UTF-8 text") from None
    # RecursionError: garbage such as "[[[[..." nested deeper than the parser goes.
    except (ValueError, RecursionError) as e:
        raise corrupt(f"the file is not valid JSON ({_first_line(e)})") from None
    if not isinstance(content, dict):
        raise corrupt("the file is not a JSON object")
    checksum = content.pop("checksum", None)
    if not isinstance(checksum, str) or not checksum.startswith(_CHECKSUM):
        raise corrupt("it has no sha256 checksum (truncated, or not a provision ledger)")
    try:
        body = canonical_json(content)
    except (ValueError, RecursionError):
        raise corrupt("it holds values that are not JSON") from None
    if hashlib.sha256(body).hexdigest() != checksum[len(_CHECKSUM) :]:
        raise corrupt("the checksum does not match the content (edited or damaged)")
    fmt = content.get("format")
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT:
        raise LedgerError(
            f"ledger {location} has format {fmt}, written by a newer provision; this one reads "
            f"format {FORMAT}: upgrade provision"
        )
    try:
        return Ledger.from_dict(content)
    except ValueError as e:
        raise corrupt(f"its content is invalid: {e}") from None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
