"""The full crash harness: tests/recovery/test_crash_commands.py with CRASH=all (every mutating
request of apply, destroy and rollback, killed as it arrives and once answered), and its
figures per command, for the README.

    python scripts/crash_harness.py [PYTEST ARGS]   (say -k destroy for one command)

Runs pytest (in parallel, as the suite does), collects the summary line each test prints and
prints them as a table. Exits with pytest's status: the failing kill points, each with the
second run's output, are in pytest's report above the table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
HARNESS = "tests/recovery/test_crash_commands.py"
# As tests/recovery/crashkit.py's Tally.line writes it.
SUMMARY = re.compile(
    r"crash harness: (?P<command>.+?): (?P<points>\d+) kill points \((?P<unreached>\d+) not "
    r"reached\), (?P<stuck>\d+) stuck, (?P<orphans>\d+) orphans, (?P<duplicates>\d+) duplicates, "
    r"(?P<missing>\d+) missing, (?P<unrestored>\d+) not restored, (?P<minutes>[\d.]+) min"
)
COLUMNS = (
    ("command", "command"), ("points", "kill points"), ("unreached", "not reached"),
    ("stuck", "stuck"), ("orphans", "orphans"), ("duplicates", "duplicates"),
    ("missing", "missing"), ("unrestored", "not restored"), ("minutes", "minutes"),
)


def main(args: list[str]) -> int:
    # -rA: pytest shows what passing tests printed too, where their summary lines are.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", HARNESS, *args],
        cwd=ROOT, env=os.environ | {"CRASH": "all"}, stdout=subprocess.PIPE, text=True,
    )
    print(proc.stdout)
    rows = [match.groupdict() for match in SUMMARY.finditer(proc.stdout)]
    widths = [max([len(title), *(len(row[key]) for row in rows)]) for key, title in COLUMNS]
    print("  ".join(title.ljust(w) for (_, title), w in zip(COLUMNS, widths, strict=True)))
    for row in sorted(rows, key=lambda row: row["command"]):
        print("  ".join(row[key].ljust(w) for (key, _), w in zip(COLUMNS, widths, strict=True)))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
