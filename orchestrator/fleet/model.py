"""The fleet file: one plan, many instances of it.

    name: tenants
    plan: ../plans/network-basics.yaml     # relative to this file
    state: gs://BUCKET/fleets/tenants      # status records and shared locks (default
                                           # .provision/fleets/NAME)
    concurrency: 32                        # instances under way at once in one runner
    instances:
      - name: t01
        vars: {project: t01-project}
        ledger: gs://BUCKET/ledgers/t01.json   # default STATE/ledgers/NAME.json
        wave: 1                                # default 1: waves run in order

Every problem is reported with its file:line, all at once, before anything is sent to Google.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.plan.errors import Diagnostic, PlanError, did_you_mean
from orchestrator.plan.source import SourceMap, parse, read_text

DEFAULT_CONCURRENCY = 32
_NAME = re.compile(r"[a-z0-9]([-a-z0-9_]{0,61}[a-z0-9])?\Z")
_TOP = ("name", "plan", "state", "concurrency", "instances")
_INSTANCE = ("name", "vars", "ledger", "wave")


@dataclass(frozen=True)
class Instance:
    name: str
    vars: dict[str, str]
    ledger: str
    wave: int = 1


@dataclass(frozen=True)
class Fleet:
    name: str
    file: Path
    plan: Path
    state: str
    concurrency: int
    instances: tuple[Instance, ...] = field(default_factory=tuple)

    def waves(self, instances: tuple[Instance, ...] | None = None) -> list[list[Instance]]:
        """`instances` (all by default) by wave, in wave order, file order within each."""
        chosen = self.instances if instances is None else instances
        return [[i for i in chosen if i.wave == w] for w in sorted({i.wave for i in chosen})]

    def shard(self, index: int, count: int) -> tuple[Instance, ...]:
        """The index-th of `count` slices: every count-th instance from the index-th, so each
        slice takes its share of every wave."""
        return tuple(i for n, i in enumerate(self.instances) if n % count == index)


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" (0 ≤ I < N), as Cloud Run's CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT give."""
    index, sep, count = text.partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit()):
        raise ValueError(f"--shard {text!r}: expected I/N, such as 0/4")
    i, n = int(index), int(count)
    if n < 1 or i >= n:
        raise ValueError(f"--shard {text!r}: I must be at least 0 and below N")
    return i, n


def load_fleet(path: str | Path) -> Fleet:
    """Raises PlanError with every problem found, each at its file:line."""
    file = str(path)
    text, found = read_text(file)
    if text is None:
        raise PlanError(found)
    data, source, found = parse(text, file)
    if found or data is None:
        raise PlanError(found or [Diagnostic(file, 1, 1, "", "the fleet file is empty")])
    return _Reader(file, source).fleet(data)


class _Reader:
    def __init__(self, file: str, source: SourceMap) -> None:
        self.file = file
        self.source = source
        self.found: list[Diagnostic] = []

    def bad(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        pos = self.source.key(path) if key else self.source.value(path)
        field_name = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path)
        self.found.append(Diagnostic.at(pos, field_name.replace(".[", "["), message))

    def fleet(self, data: Any) -> Fleet:
        if not isinstance(data, dict):
            raise PlanError([Diagnostic(self.file, 1, 1, "", "a fleet file is a mapping "
                                        "with name, plan and instances")])
        self._unknown(data, (), _TOP)
        name = self._name(data, ("name",))
        plan = self._plan(data.get("plan"))
        state = data.get("state", f".provision/fleets/{name or 'fleet'}")
        if not isinstance(state, str) or not state:
            self.bad(("state",), "a directory or gs://BUCKET/PREFIX")
            state = ""
        concurrency = data.get("concurrency", DEFAULT_CONCURRENCY)
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            self.bad(("concurrency",), "a whole number of instances, at least 1")
            concurrency = DEFAULT_CONCURRENCY
        raw = data.get("instances")
        if not isinstance(raw, list) or not raw:
            self.bad(("instances",), "a list of instances, each with a name", key=True)
            raw = []
        instances = [self._instance(item, n, state) for n, item in enumerate(raw)]
        seen: dict[str, int] = {}
        for n, inst in enumerate(instances):
            if inst is None:
                continue
            for value, what in ((inst.name, "name"), (inst.ledger, "ledger")):
                key = f"{what}:{value}"
                if key in seen:
                    self.bad(("instances", n, what), f"{value!r} is also instance "
                             f"{seen[key]}'s {what}: each instance has its own")
                seen.setdefault(key, n)
        if self.found:
            raise PlanError(self.found)
        return Fleet(name, Path(self.file), plan, state.rstrip("/"), concurrency,
                     tuple(i for i in instances if i is not None))

    def _unknown(self, data: dict[str, Any], path: tuple[str | int, ...],
                 known: tuple[str, ...]) -> None:
        for key in data:
            if key not in known:
                self.bad((*path, key), f"unknown field{did_you_mean(str(key), known)}; "
                         f"expected {', '.join(known)}", key=True)

    def _name(self, data: dict[str, Any], path: tuple[str | int, ...]) -> str:
        name = data.get(path[-1])
        if not isinstance(name, str) or not _NAME.match(name):
            self.bad(path, "a name of lowercase letters, digits, - and _ (at most 63)",
                     key=name is None)
            return ""
        return name

    def _plan(self, value: Any) -> Path:
        if not isinstance(value, str) or not value:
            self.bad(("plan",), "the plan file every instance applies, relative to this file",
                     key=value is None)
            return Path()
        plan = (Path(self.file).parent / value)
        if not plan.is_file():
            self.bad(("plan",), f"{plan}: no such plan file")
        return plan

    def _instance(self, item: Any, n: int, state: str) -> Instance | None:
        path: tuple[str | int, ...] = ("instances", n)
        if not isinstance(item, dict):
            self.bad(path, "an instance is a mapping with a name (and vars, ledger, wave)")
            return None
        self._unknown(item, path, _INSTANCE)
        name = self._name(item, (*path, "name"))
        vars_ = item.get("vars", {})
        if not isinstance(vars_, dict) or not all(
                isinstance(v, str | int | float | bool) for v in vars_.values()):
            self.bad((*path, "vars"), "a mapping of variable names to values")
            vars_ = {}
        ledger = item.get("ledger", f"{state.rstrip('/')}/ledgers/{name}.json")
        if not isinstance(ledger, str) or not ledger.endswith(".json"):
            self.bad((*path, "ledger"), "a path or gs://BUCKET/PATH ending in .json")
        wave = item.get("wave", 1)
        if not isinstance(wave, int) or isinstance(wave, bool) or wave < 0:
            self.bad((*path, "wave"), "a whole number: waves run in order, lowest first")
            wave = 1
        return Instance(name, {str(k): _text(v) for k, v in vars_.items()}, str(ledger), wave)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
