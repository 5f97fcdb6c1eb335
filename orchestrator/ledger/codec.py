"""The ledger's bytes, the same in every store.

The file is the canonical JSON of the ledger (sorted keys, no spaces, UTF-8) with one more key,
`checksum`, first: "sha256:" + the hex SHA-256 of the canonical JSON of everything else. The
checksum is checked against the parsed content re-serialised canonically, not against the raw
bytes, so a tool that only re-indents the file (jq, an editor) leaves it valid, while any change to
a value is caught. This envelope stays the same in every future format, so that a newer ledger is
reported as newer, not as corrupt.

A journal (see local.py) is a sequence of entries in the same envelope, one canonical JSON line
each: the changes of one save, so that a save costs what it changed rather than the whole ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from orchestrator.ledger.errors import LedgerCorrupt, LedgerError
from orchestrator.ledger.model import FORMAT, Ledger, ResourceRecord, Run

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
    return _sealed(content)


def encode_entry(
    ledger: Ledger, serial: int, changed: Iterable[str], run_saved: tuple[int, int]
) -> bytes:
    """The journal line for save `serial`: the records of steps `changed` (null: removed from
    the ledger), and the ledger's last run, with only the actions and events it gained since
    the previous save, which left it with `run_saved` (actions, events)."""
    last = ledger.runs[-1]
    run = last.to_dict()
    actions, events = run_saved
    run["actions"], run["events"] = run["actions"][actions:], last.events[events:]
    resources = ledger.resources
    return _sealed({
        "lineage": ledger.lineage,
        "serial": serial,
        "resources": {
            sid: resources[sid].to_dict() if sid in resources else None for sid in changed
        },
        "run": run,
        "run_saved": [actions, events],
    })


def replay(ledger: Ledger, data: bytes, location: str, journal: str, backup: str) -> None:
    """Applies to `ledger` the entries of journal `data` that follow its serial; LedgerCorrupt
    (naming `location`, the journal's line, and `backup` to restore) when one does not verify or
    does not follow on."""
    damage = replay_prefix(ledger, data, location, journal, backup)
    if damage is not None:
        raise damage


def replay_prefix(
    ledger: Ledger, data: bytes, location: str, journal: str, backup: str
) -> LedgerCorrupt | None:
    """`replay`, stopping at the first entry that does not verify or follow on: `ledger` then
    holds every save before it, and the damage is returned rather than raised."""
    lines = data.split(b"\n")
    # What follows the last newline is a write cut short by a crash: it was never acknowledged
    # (its savers were still waiting for the disk), so it is not part of the ledger.
    lines.pop()
    for number, line in enumerate(lines, 1):
        corrupt = _corruption(location, f"line {number} of its journal {journal}", backup)
        try:
            entry = _unsealed(line, corrupt, "the line")
        except LedgerCorrupt as damage:
            return damage
        serial = entry.get("serial")
        if not isinstance(serial, int) or serial <= ledger.serial:
            # Written before the snapshot that now holds it (a crash came between the two).
            continue
        if entry.get("lineage") != ledger.lineage:
            return corrupt(f"it belongs to another plan instance (lineage {entry.get('lineage')})")
        if serial != ledger.serial + 1:
            return corrupt(f"it is save {serial}, but the ledger is at save {ledger.serial}")
        try:
            _apply(ledger, entry)
        except ValueError as e:
            return corrupt(f"its content is invalid: {e}")
        ledger.serial = serial
    return None


def _corruption(location: str, where: str, backup: str) -> Callable[[str], LedgerCorrupt]:
    return lambda reason: LedgerCorrupt(location, f"{where}: {reason}", backup)


def _apply(ledger: Ledger, entry: dict[str, Any]) -> None:
    """Applies one entry, or raises ValueError having changed nothing."""
    resources, raw_run = entry.get("resources"), entry.get("run")
    if not isinstance(resources, dict):
        raise ValueError("resources: expected an object")
    records: dict[str, ResourceRecord | None] = {}
    for step_id, raw in resources.items():
        if raw is None:
            records[step_id] = None
            continue
        record = ResourceRecord.from_dict(raw, f"resources.{step_id}")
        if record.step_id != step_id:
            raise ValueError(f"resources.{step_id}: step_id is {record.step_id!r}")
        records[step_id] = record
    run = Run.from_dict(raw_run, "run")
    if not ledger.runs or ledger.runs[-1].id != run.id:
        raise ValueError(f"run {run.id} is not the ledger's last run")
    last = ledger.runs[-1]
    if entry.get("run_saved") != [len(last.actions), len(last.events)]:
        raise ValueError(
            f"run_saved is not [{len(last.actions)}, {len(last.events)}], the run's actions and "
            "events recorded before"
        )
    for step_id, record in records.items():
        if record is None:
            ledger.resources.pop(step_id, None)
        else:
            ledger.resources[step_id] = record
    run.actions, run.events = last.actions + run.actions, last.events + run.events
    ledger.runs[-1] = run


def _sealed(content: dict[str, Any]) -> bytes:
    body = canonical_json(content)
    checksum = _CHECKSUM + hashlib.sha256(body).hexdigest()
    # "checksum" sorts before every other key, so this is the canonical JSON of the whole file.
    return b'{"checksum":"' + checksum.encode() + b'",' + body[1:] + b"\n"


def _unsealed(
    data: bytes, corrupt: Callable[[str], LedgerCorrupt], what: str = "the file"
) -> dict[str, Any]:
    """The content of `data` once its checksum is verified (and removed)."""
    if not data.strip():
        raise corrupt(f"{what} is empty")
    try:
        content = json.loads(data.decode())
    except UnicodeDecodeError:
        raise corrupt(f"{what} is not UTF-8 text") from None
    # RecursionError: garbage such as "[[[[..." nested deeper than the parser goes.
    except (ValueError, RecursionError) as e:
        raise corrupt(f"{what} is not valid JSON ({_first_line(e)})") from None
    if not isinstance(content, dict):
        raise corrupt(f"{what} is not a JSON object")
    checksum = content.pop("checksum", None)
    if not isinstance(checksum, str) or not checksum.startswith(_CHECKSUM):
        raise corrupt("it has no sha256 checksum (truncated, or not a provision ledger)")
    try:
        body = canonical_json(content)
    except (ValueError, RecursionError):
        raise corrupt("it holds values that are not JSON") from None
    if hashlib.sha256(body).hexdigest() != checksum[len(_CHECKSUM) :]:
        raise corrupt("the checksum does not match the content (edited or damaged)")
    return content


def decode(data: bytes, location: str, backup: str | None = None) -> Ledger:
    """The ledger in `data`, or LedgerCorrupt naming `location` (and `backup`, to restore)."""

    def corrupt(reason: str) -> LedgerCorrupt:
        return LedgerCorrupt(location, reason, backup)

    content = _unsealed(data, corrupt)
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
