"""Where in the plan something is wrong, and the error that carries every such finding."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Position:
    """A place in a file; line and col are 1-based, 0 when the place is not in a file (--var)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    col: int
    field: str
    message: str

    @classmethod
    def at(cls, pos: Position, field: str, message: str) -> Diagnostic:
        return cls(pos.file, pos.line, pos.col, field, message)

    def __str__(self) -> str:
        if not self.field:
            return f"{Position(self.file, self.line, self.col)}: {self.message}"
        if not self.line:  # a command-line flag: "--var project: ..."
            return f"{self.file} {self.field}: {self.message}"
        return f"{Position(self.file, self.line, self.col)}: {self.field}: {self.message}"


class PlanError(Exception):
    """A plan that cannot be run, with every problem found in it (not just the first)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        # Command-line problems (line 0) first, then in file order, so the output reads top-down.
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.line, d.col))
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def __reduce__(self) -> tuple[type[PlanError], tuple[list[Diagnostic]]]:
        # Rebuilt from its diagnostics (not its message) where it crosses a process boundary.
        return (PlanError, (self.diagnostics,))


def did_you_mean(word: str, choices: Iterable[str], n: int = 1) -> str:
    """' (did you mean x?)' for the closest of `choices`, or '' when none is close."""
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    close = difflib.get_close_matches(word.lower(), by_lower, n=n, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {', '.join(by_lower[c] for c in close)}?)"
