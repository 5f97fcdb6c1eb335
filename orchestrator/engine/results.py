"""What plan, apply and destroy return to their callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.engine.diff import Change
from orchestrator.engine.events import Event

KNOWN_AFTER_APPLY = "(known after apply)"

# A plan's words, and a run's: "leave" is a removal that keeps the resource (an enabled API).
ACTIONS = ("create", "update", "replace", "delete", "leave", "noop")


@dataclass(frozen=True)
class StepChange:
    """One step's planned action. `changes` lists the fields behind an update or replace;
    `previous` is the resource a move leaves; `because` the replaced step a replace follows."""

    step: str
    kind: str
    action: str
    resource: str
    changes: tuple[Change, ...] = ()
    reason: str = ""
    previous: str = ""
    because: str = ""
    moved_from: str = ""  # the step id the ledger recorded it under (a `moved:` entry)
    # What the plan was made from, for apply to check that nothing changed since: the step's
    # resolved spec and the live values of the fields it sets (keyed hashes, no values).
    fingerprint: str = ""
    observed: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["changes"] = [c.__dict__ for c in self.changes]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepChange:
        changes = tuple(Change(**c) for c in data.get("changes", ()))
        return cls(**{**data, "changes": changes})

    @property
    def settled(self) -> bool:
        """False for an update whose every change waits on a value only apply will know: it
        may turn out unchanged, and apply then reports noop."""
        return not (self.action == "update" and self.changes
                    and all(c.desired == KNOWN_AFTER_APPLY for c in self.changes))

    def to_event(self) -> Event:
        data: dict[str, Any] = {
            "changes": [{"field": c.field, "old": c.live, "new": c.desired}
                        for c in self.changes],
        }
        for key in ("previous", "because", "moved_from"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if not self.settled:
            data["settled"] = False
        return Event("step_planned", step=self.step, kind=self.kind, action=self.action,
                     resource=self.resource, message=self.reason, data=data)


@dataclass(frozen=True)
class Preview:
    steps: tuple[StepChange, ...]
    serial: int = 0  # the ledger's, when the plan was made
    lineage: str = ""  # the ledger's

    def events(self) -> list[Event]:
        """The plan as `plan --json` prints it: a step_planned per step, a plan_finished."""
        counts = {a: self.count(a) for a in ACTIONS}
        return [*(s.to_event() for s in self.steps),
                Event("plan_finished", message=self.summary,
                      data={"counts": counts, "ledger_serial": self.serial})]

    def count(self, action: str) -> int:
        return sum(1 for s in self.steps if s.action == action)

    @property
    def has_changes(self) -> bool:
        return any(s.action != "noop" or s.moved_from for s in self.steps)

    @property
    def summary(self) -> str:
        return (
            f"{self.count('create')} to add, {self.count('update')} to change, "
            f"{self.count('replace')} to replace, {self.count('delete')} to destroy"
            + (f", {self.count('leave')} to leave in place" if self.count("leave") else "")
            + (f", {moved} to move in the ledger" if (moved := sum(
                1 for s in self.steps if s.moved_from)) else "")
        )

    def _repr_html_(self) -> str:
        from orchestrator.html import preview_html

        return preview_html(self)


@dataclass
class StepFailure:
    step: str
    kind: str
    resource: str
    message: str


@dataclass
class RunResult:
    command: str
    run_id: str
    actions: dict[str, str] = field(default_factory=dict)  # step -> action taken
    failures: list[StepFailure] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # step -> the failed step it needed
    cancelled: list[str] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    elapsed: float = 0.0  # simulated seconds
    rollback: RunResult | None = None  # when apply rolled back on failure

    @property
    def ok(self) -> bool:
        return not (self.failures or self.skipped or self.cancelled)

    def _repr_html_(self) -> str:
        from orchestrator.html import result_html

        return result_html(self)
