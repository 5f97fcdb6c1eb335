"""The whole edit corpus (tests/corpus) over every reference plan, with its totals: how many
edits and reverts, how many Google refused, and every disagreement found.

    python scripts/edit_corpus.py [PLAN_NAME ...]

The suite runs one edit of each category per plan; `pytest -m slow tests/corpus` runs them all
and fails on any disagreement; this prints what the README reports.
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from corpus.edits import PLANS, edits  # noqa: E402
from corpus.test_edit_corpus import _report, run_corpus  # noqa: E402


def one(name: str) -> tuple[str, dict, list[str], list[str]]:
    plan = PLANS / name
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_corpus(plan, edits(plan), Path(tmp))
    problems, tally = _report(outcomes)
    refused = [f"{n}: {o.refused[0][:140]}" for n, o in outcomes.items() if o.refused]
    return name, dict(tally), problems, refused


def main() -> None:
    names = sys.argv[1:] or sorted(p.name for p in PLANS.glob("*.yaml"))
    totals: dict[str, int] = {}
    failed = False
    with ProcessPoolExecutor(max_workers=2) as pool:
        for name, tally, problems, refused in pool.map(one, names):
            print(f"{name}: " + ", ".join(f"{v} {k}" for k, v in tally.items()))
            for line in refused:
                print(f"  refused: {line}")
            for line in problems:
                print(f"  DISAGREES: {line}")
            failed = failed or bool(problems)
            for key, value in tally.items():
                totals[key] = totals.get(key, 0) + value
            totals["disagreements"] = totals.get("disagreements", 0) + len(problems)
    print("total: " + ", ".join(f"{v} {k}" for k, v in totals.items()))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
