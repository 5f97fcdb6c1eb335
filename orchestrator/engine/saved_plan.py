"""A plan saved to a file (`provision plan -o FILE`), applied later exactly as it was made.

The file holds what apply needs to find the same plan again and to tell whether anything
changed since: the plan file's path and hash, every var's value and the targets, the ledger's
location, lineage and serial, and per step its action with the hashes of its resolved spec and
of the live values it was decided on. No secret value is in it: specs are recorded as the
ledger records them (secrets as keyed fingerprints), and only hashes of those.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.engine.results import Preview, StepChange
from orchestrator.engine.steps import InvalidRequest

FORMAT = "provision-saved-plan"
VERSION = 2  # 2: every var's value, typed (1 held the --var overrides only, as strings)


@dataclass(frozen=True)
class SavedPlan:
    plan_file: Path
    plan_sha256: str
    vars: dict[str, Any]  # every var's value when it was saved, whatever set it
    targets: tuple[str, ...]
    ledger: str
    preview: Preview

    def check_plan_file(self) -> None:
        """The plan file must be the one the plan was made from, byte for byte."""
        try:
            now = file_sha256(self.plan_file)
        except OSError as exc:
            raise InvalidRequest(f"{self.plan_file}: {exc.strerror}; the saved plan was made "
                                 "from it. Nothing was done.") from None
        if now != self.plan_sha256:
            raise InvalidRequest(
                f"{self.plan_file} changed since this plan was saved: nothing was done; run "
                "provision plan -o again"
            )


def file_sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def save(saved: SavedPlan, path: Path) -> None:
    data = {
        "format": FORMAT,
        "version": VERSION,
        "plan_file": str(saved.plan_file.resolve()),
        "plan_sha256": saved.plan_sha256,
        "vars": saved.vars,
        "targets": list(saved.targets),
        "ledger": saved.ledger,
        "ledger_serial": saved.preview.serial,
        "ledger_lineage": saved.preview.lineage,
        "steps": [s.to_dict() for s in saved.preview.steps],
    }
    # Whole or not at all: a half-written plan would be refused, but so is a good one lost.
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=1, default=str)
    os.replace(tmp, path)


def is_saved_plan(path: Path) -> bool:
    """Whether the file is a saved plan rather than a plan to load (YAML)."""
    try:
        with path.open("rb") as f:
            head = f.read(200)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and FORMAT.encode() in head


def load(path: Path) -> SavedPlan:
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError("not a saved plan")
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}, this provision reads {VERSION}")
        preview = Preview(
            tuple(StepChange.from_dict(_fields(s)) for s in data["steps"]),
            serial=int(data["ledger_serial"]),
            lineage=str(data["ledger_lineage"]),
        )
        return SavedPlan(
            plan_file=Path(data["plan_file"]),
            plan_sha256=str(data["plan_sha256"]),
            vars={str(k): v for k, v in dict(data["vars"]).items()},
            targets=tuple(str(t) for t in data["targets"]),
            ledger=str(data["ledger"]),
            preview=preview,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidRequest(f"{path}: cannot read this saved plan ({exc}); make it again "
                             "with provision plan -o") from None


def _fields(step: Any) -> dict[str, Any]:
    if not isinstance(step, dict):
        raise ValueError(f"a step is {type(step).__name__}, not an object")
    known = set(StepChange.__dataclass_fields__)
    unknown = set(step) - known
    if unknown:
        raise ValueError(f"unknown step fields {sorted(unknown)}")
    return step
