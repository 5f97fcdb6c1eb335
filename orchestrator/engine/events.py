"""Run events: what the live display, `--json` and the Python API's callback all receive."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# MAJOR on any incompatible change to the JSON-lines event shape; MINOR when something is added
# (1.1: the plan's step_planned and plan_finished; 1.2: rollback's recreate action; 1.3: the
# absent action of a delete that found nothing to delete).
SCHEMA_VERSION = "1.3"


@dataclass(frozen=True)
class Event:
    """type: run_started | step_started | step_progress | step_finished | step_failed |
    step_skipped | run_finished | diagnostic; a plan's step_planned and plan_finished.
    action: create | update | replace | delete | noop | read (what the step does)."""

    type: str
    step: str | None = None
    kind: str | None = None
    action: str | None = None
    resource: str | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": SCHEMA_VERSION, "type": self.type, "time": self.time}
        for key in ("step", "kind", "action", "resource"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.message:
            out["message"] = self.message
        if self.data:
            out["data"] = self.data
        return out


EventCallback = Callable[[Event], None]
