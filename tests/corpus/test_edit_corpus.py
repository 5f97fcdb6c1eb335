"""The edit corpus (see edits.py) over every reference plan, on the emulator: each edit applied
and checked (checks.py), then the reference plan applied again and checked the same way.

By default one edit of each category per plan runs; CORPUS=all runs them all (about eleven
minutes on two cores); scripts/edit_corpus.py runs them all and prints the totals the README
reports.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

import orchestrator
from orchestrator.plan import PlanError
from provision_emulator import Emulator

from .checks import Outcome, check
from .edits import PLANS, Edit, dump, edits, load

PLAN_FILES = sorted(PLANS.glob("*.yaml"))
EVERY = os.environ.get("CORPUS") == "all"
pytestmark = pytest.mark.slow


def _sample(found: list[Edit]) -> list[Edit]:
    seen: set[str] = set()
    picked = []
    for edit in found:
        if edit.category not in seen:
            seen.add(edit.category)
            picked.append(edit)
    return picked


def run_corpus(plan: Path, chosen: list[Edit], tmp: Path) -> dict[str, Outcome]:
    """Apply the plan, then each edit and the plan again; the outcome of each, by name. After
    an edit that did not end cleanly, the next starts from a new cloud, so that one failure is
    counted once."""
    for folder in PLANS.iterdir():
        if folder.is_dir():
            shutil.copytree(folder, tmp / folder.name, dirs_exist_ok=True)
    base = dump(load(plan))
    outcomes: dict[str, Outcome] = {}
    remaining = list(chosen)
    for attempt in range(len(chosen) + 1):
        work = tmp / f"cloud-{attempt}"
        work.mkdir()
        file = work / plan.name
        for folder in PLANS.iterdir():
            if folder.is_dir():
                (work / folder.name).symlink_to(tmp / folder.name)
        with Emulator(seed=3) as emu:
            first = _apply(emu, file, base)
            assert not first.problems and not first.refused, first
            while remaining:
                edit = remaining.pop(0)
                outcomes[edit.id] = _apply(emu, file, edit.text)
                reverted = outcomes[f"{edit.id} (reverted)"] = _apply(emu, file,
                                                                      edit.revert or base)
                if outcomes[edit.id].problems or outcomes[edit.id].refused or reverted.problems:
                    break
        if not remaining:
            break
    return outcomes


def _apply(emu: Emulator, file: Path, text: str) -> Outcome:
    file.write_text(text)
    before = len(emu.requests())
    try:
        dep = orchestrator.load(file, emulator=emu, state_dir=file.parent / ".provision")
    except PlanError as exc:
        # The tool refuses the edit before any call (two routers given one ASN, say): what
        # it promises for bad input, checked here too.
        sent = emu.requests()[before:]
        return Outcome(refused=[f"validation: {exc}"[:300]],
                       problems=[f"{len(sent)} requests for a plan that failed validation"]
                       if sent else [])
    with dep:
        return check(emu, dep)


def _report(outcomes: dict[str, Outcome]) -> tuple[list[str], Counter]:
    problems = [f"{name}: {p}" for name, o in outcomes.items() for p in o.problems]
    tally: Counter = Counter()
    for name, outcome in outcomes.items():
        tally["reverts" if name.endswith("(reverted)") else "edits"] += 1
        refused = outcome.refused[:1]
        validation = bool(refused) and refused[0].startswith("validation: ")
        tally["refused by Google"] += bool(refused) and not validation
        tally["refused at validation"] += validation
        tally["mutating requests"] += outcome.requests
    return problems, tally


@pytest.mark.parametrize("plan", PLAN_FILES, ids=[p.stem for p in PLAN_FILES])
def test_edits_agree(plan: Path, tmp_path: Path) -> None:
    found = edits(plan)
    problems, _ = _report(run_corpus(plan, found if EVERY else _sample(found), tmp_path))
    assert not problems, "\n".join(problems)
