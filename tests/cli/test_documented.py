"""The README documents, in one table each, every exit status the CLI uses and every environment
variable the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator import cli

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def _table(header: str) -> str:
    """The README's markdown table whose header row starts with `header`."""
    start = README.index(f"| {header} |")
    end = README.find("\n\n", start)
    return README[start:end]


def test_every_exit_status_is_in_the_readmes_table() -> None:
    documented = {int(n) for n in re.findall(r"^\| (\d+) \|", _table("exit"), re.M)}
    used = {0, cli.FAILED, cli.INVALID, cli.CHANGES, cli.DENIED, cli.INTERRUPTED}
    assert documented == used


def test_every_environment_variable_read_is_in_the_readmes_table() -> None:
    table = _table("environment variable")
    documented = set(re.findall(r"^\| `([A-Z_a-z]+)` \|", table, re.M))
    read: set[str] = set()
    for package in ("orchestrator", "provision_emulator", "google_facts"):
        for source in (ROOT / package).rglob("*.py"):
            text = source.read_text()
            read |= set(re.findall(r"\"(PROVISION_[A-Z_]+)\"", text))
            read |= set(re.findall(r"environ(?:\.get\(|\[)\"([A-Z_]+)\"", text))
    read = {"PROVISION_VAR_name" if name == "PROVISION_VAR_" else name for name in read}
    assert read, "the scan found nothing: the pattern is wrong"
    assert read <= documented, read - documented
