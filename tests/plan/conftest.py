"""Helpers for plan tests: load a plan from text, find a diagnostic, find a line."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator.plan import Diagnostic, Plan, PlanError, load_plan

HEADER = """\
name: t
defaults:
  project: demo-project
  region: europe-west1
steps:
"""


class PlanText:
    """A plan written to a file, so tests go through load_plan like the CLI does."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.text = ""
        self.path = tmp_path / "plan.yaml"

    def write(self, text: str, *, header: bool = False) -> Path:
        text = textwrap.dedent(text)
        # Steps written for the header sit under its `steps:`, indented as in a real plan.
        self.text = HEADER + textwrap.indent(text, "  ") if header else text
        self.path.write_text(self.text, encoding="utf-8")
        return self.path

    def load(self, text: str, *, header: bool = False, vars: dict[str, Any] | None = None) -> Plan:
        return load_plan(self.write(text, header=header), vars)

    def errors(
        self, text: str, *, header: bool = False, vars: dict[str, Any] | None = None
    ) -> list[Diagnostic]:
        with pytest.raises(PlanError) as info:
            load_plan(self.write(text, header=header), vars)
        assert str(info.value)  # renders without error
        return info.value.diagnostics

    def line(self, snippet: str, nth: int = 0) -> int:
        """The 1-based line holding `snippet` (its nth occurrence)."""
        hits = [i + 1 for i, line in enumerate(self.text.splitlines()) if snippet in line]
        assert len(hits) > nth, f"{snippet!r} not in plan"
        return hits[nth]

    def one(self, diagnostics: list[Diagnostic], field: str) -> Diagnostic:
        """The single diagnostic about `field`, after checking there is exactly one."""
        hits = [d for d in diagnostics if d.field == field]
        assert len(hits) == 1, [str(d) for d in diagnostics]
        return hits[0]


@pytest.fixture
def plan(tmp_path: Path) -> PlanText:
    return PlanText(tmp_path)


@pytest.fixture
def sample() -> Path:
    return Path(__file__).resolve().parents[2] / "plans" / "network-basics.yaml"


@pytest.fixture
def no_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the loader use ruamel's pure-Python parser, as where libyaml is missing."""
    from orchestrator.plan import source

    monkeypatch.setattr(source, "CParser", None)
