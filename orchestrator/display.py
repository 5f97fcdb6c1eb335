"""What a person sees: the plan's diff, live step progress, run summaries (rich)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from orchestrator.engine.events import Event
from orchestrator.engine.results import Preview, RunResult

if TYPE_CHECKING:  # verify's package pulls in the kinds and cryptography: not for every run
    from orchestrator.verify.report import Report

SYMBOLS = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "replace": ("-/+", "magenta"),
    "delete": ("-", "red"),
    "leave": ("-", "dim"),
    "noop": (" ", "dim"),
}


def _text(value: Any) -> str:
    return json.dumps(value, default=repr) if not isinstance(value, str) else value


# How a run's summary counts each action, in this order.
DONE = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "restore": "restored",
    "recreate": "made again",
    "import": "imported",
    "refresh": "refreshed",
    "delete": "deleted",
    "absent": "already absent",
    "leave": "left in place",
    "gone": "deleted outside provision",
    "move": "moved to another step",
    "forget": "forgotten (left in the cloud)",
}


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def duration(seconds: float) -> str:
    """12.3 s, 25m 03s, 1h 02m: as long as Google took (on the emulator, as long as it would)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def render_preview(preview: Preview) -> Group:
    lines: list[Text] = []
    shown = [step for step in preview.steps if step.action != "noop" or step.moved_from]
    id_width = max((len(step.step) for step in shown), default=0)
    kind_width = max((len(step.kind) for step in shown), default=0)
    for step in shown:
        symbol, style = SYMBOLS[step.action]
        line = Text.assemble((f"{symbol:>3} ", style), (f"{step.step:<{id_width}}", "bold"),
                             f"  {step.kind:<{kind_width}}  ", (step.resource, "dim"))
        why = [w for w in (step.reason, step.moved_from and f"moved from {step.moved_from}")
               if w]
        if why:
            line.append(f"  ({'; '.join(why)})", style="italic")
        lines.append(line)
        for change in step.changes:
            old, new = _text(change.live), _text(change.desired)
            if len(old) + len(new) <= 80:
                lines.append(Text(f"        {change.field}: {old} -> {new}", style=style))
            else:  # whole, one above the other: a long value cut off hides what changes
                lines.append(Text(f"        {change.field}:", style=style))
                lines.append(Text(f"          - {old}", style="red"))
                lines.append(Text(f"          + {new}", style="green"))
        if not step.settled:
            lines.append(Text("        (may turn out unchanged)", style="dim"))
    unchanged = preview.count("noop")
    if not lines:
        return Group(Text(f"No changes: {plural(unchanged, 'resource')} up to date.",
                          style="green"))
    if any("${" in step.resource for step in preview.steps):
        lines.append(Text("  ${step.output}: known once that step has run", style="dim"))
    lines.append(Text(f"\nPlan: {preview.summary}; {unchanged} unchanged.", style="bold"))
    return Group(*lines)


def _label(event: Event) -> str:
    """"note", or "warning" for what limits a finished step (data.level)."""
    return str(event.data.get("level", "note"))


def _note(console: Console, event: Event) -> None:
    console.print(f"[yellow]{_label(event)}:[/] {escape(event.message)}", highlight=False)


def notes(console: Console) -> Callable[[Event], None]:
    """An event callback that prints only diagnostics (a stale lock taken over, ...): what a
    plan has to say besides its diff."""

    def note(event: Event) -> None:
        if event.type == "diagnostic":
            _note(console, event)

    return note


class LiveDisplay:
    """Each step's state and elapsed time while its operation runs, fed by engine events
    (which arrive from worker threads).

    clock: the engine's (Deployment.clock.now), so that times are Google's even when the
    emulator runs them faster; real time by default."""

    def __init__(
        self, console: Console, order: list[str], clock: Callable[[], float] = time.monotonic,
        simulated: bool = False, scale: float | None = None,
    ) -> None:
        """simulated: the clock is an emulator's, whose times are Google's durations played
        faster; every time shown says so. scale: that emulator's time scale when it runs on the
        wall clock (`provision emulator --time-scale`), where provision's own work is scaled
        up too."""
        self.console = console
        self.order = order
        self.clock = clock
        self.simulated = simulated
        self.scale = scale
        self.state: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None
        self.notes: list[tuple[str, str]] = []  # (label, message)

    def __enter__(self) -> LiveDisplay:
        if self.console.is_terminal:
            self._live = Live(self._frame(), console=self.console, refresh_per_second=8,
                              get_renderable=self._frame)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End the live region, leaving its last frame: what is printed next stays in view."""
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def __call__(self, event: Event) -> None:
        if event.type == "diagnostic":
            if self._live is None:
                _note(self.console, event)
            else:
                # Part of the frame, which stays on screen when the display ends: a line
                # printed above a live region was seen to be lost when the run was ended.
                with self._lock:
                    self.notes.append((_label(event), event.message))
            return
        with self._lock:
            if event.step:
                entry = self.state.setdefault(event.step, {"started": self.clock()})
                entry["status"] = event.type.removeprefix("step_")
                if event.action:
                    entry["action"] = event.action
                if event.type in ("step_finished", "step_failed", "step_skipped"):
                    entry["ended"] = self.clock()
                # An operation's last state ("PROGRESSING") would read as the state of a step
                # that has finished: only a step on its way keeps its latest message.
                if event.message or event.type != "step_progress":
                    entry["message"] = event.message
        if self._live is None and event.type in ("step_finished", "step_failed", "step_skipped"):
            self._plain(event)

    def __rich__(self) -> Group:
        """The current frame, for printing it once (scripts/screenshots.py records one)."""
        return self._frame()

    def _plain(self, event: Event) -> None:
        """One line per step that ends, for logs and CI (no terminal to redraw)."""
        if event.action == "noop":
            return
        if event.type == "step_finished":
            entry = self.state.get(event.step or "", {})
            # The engine's clock (simulated on the emulator) when the event has it.
            elapsed = event.data.get(
                "elapsed", entry.get("ended", 0.0) - entry.get("started", 0.0)
            )
            done = (event.message if event.action == "leave" and event.message
                    else DONE.get(event.action or "", f"{event.action} finished"))
            text = f"{event.step}: {done} ({duration(elapsed)}{self._unit})"
        elif event.type == "step_failed":
            text = f"{event.step}: failed: {event.message}"
        else:
            text = f"{event.step}: not run ({event.message})"
        self.console.print(text, markup=False, highlight=False)

    @property
    def _unit(self) -> str:
        return " simulated" if self.simulated else ""

    def _frame(self) -> Group:
        table = Table(box=None, show_header=False, pad_edge=False)
        now = self.clock()
        counts = dict.fromkeys(("finished", "running", "failed", "skipped", "waiting"), 0)
        rows: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for step in self.order:
                entry = self.state.get(step)
                if entry is None:
                    counts["waiting"] += 1
                    continue
                status = entry.get("status", "")
                counts[status if status in counts else "running"] += 1
                rows.append((step, dict(entry)))
            notes = [Text.from_markup(f"[yellow]{label}:[/] ") + Text(message)
                     for label, message in self.notes]
        # The frame fits the terminal, so that it is never cut: the summary (two lines at
        # most) and notes, then as many rows as are left, the steps under way and failed
        # first, then the latest finished; the rest are counted.
        room = max(1, self.console.size.height - len(notes) - 3)
        shown = _fitting(rows, room)
        for step, entry in rows:
            if step not in shown:
                continue
            status = entry.get("status", "")
            style = {"finished": "green", "failed": "red", "skipped": "yellow"}.get(
                status, "cyan"
            )
            elapsed = entry.get("ended", now) - entry["started"]
            table.add_row(
                Text(step, style="bold"), entry.get("action", ""), Text(status, style=style),
                Text(duration(elapsed), justify="right"),
                Text(entry.get("message", "")[:70], style="dim"),
            )
        # Steps not yet started have no row: the count says how far the run is. (Not the
        # table's caption, which would wrap to the width of a narrow table.)
        summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        hidden = len(rows) - len(shown)
        if hidden:
            summary += f" ({hidden} finished not shown)"
        if self.simulated:
            summary += f" ({simulated_times(self.scale)})"
        return Group(Text(summary, style="dim italic"), *notes, table)


def _fitting(rows: list[tuple[str, dict[str, Any]]], room: int) -> set[str]:
    """The steps to show in `room` rows: those not finished first, then the latest finished."""
    if len(rows) <= room:
        return {step for step, _ in rows}
    active = [step for step, entry in rows if entry.get("status") != "finished"]
    finished = sorted((entry.get("ended", 0.0), step) for step, entry in rows
                      if entry.get("status") == "finished")
    chosen = active[:room]
    chosen += [step for _, step in finished[::-1][:room - len(chosen)]]
    return set(chosen)


def json_events(stream: IO[str] | None = None) -> Any:
    out = stream or sys.stdout

    def emit(event: Event) -> None:
        out.write(json.dumps(event.to_json(), default=repr) + "\n")
        out.flush()

    return emit


def _tally(result: RunResult) -> str:
    counts: dict[str, int] = {}
    for action in result.actions.values():
        counts[action] = counts.get(action, 0) + 1
    done = [f"{counts[a]} {word}" for a, word in DONE.items() if counts.get(a)]
    done += [f"{n} {a}" for a, n in sorted(counts.items()) if a not in DONE and a != "noop"]
    if counts.get("noop"):
        done.append(f"{counts['noop']} unchanged")
    return ", ".join(done) or "nothing changed"


def render_result(console: Console, result: RunResult, plan_path: str | None) -> None:
    done = _tally(result)
    if result.ok:
        console.print(f"[green]{result.command} complete[/]: {done}.", highlight=False)
        return
    stopped = [plural(len(result.failures), "step") + " failed"]
    if result.skipped:
        stopped.append(f"{len(result.skipped)} not run")
    if result.cancelled:
        stopped.append(f"{len(result.cancelled)} cancelled")
    console.print(f"[red]{result.command} failed[/]: {', '.join(stopped)}; {done}.",
                  highlight=False)
    for failure in result.failures:
        what = " ".join(part for part in (failure.kind, failure.resource) if part)
        console.print(f"  [red]x[/] step [bold]{escape(failure.step)}[/] ({escape(what)}): "
                      f"{escape(failure.message)}",
                      highlight=False)
    for step, cause in result.skipped.items():
        console.print(f"  [yellow]-[/] step [bold]{escape(step)}[/] not run: it needs "
                      f"{escape(cause)}",
                      highlight=False)
    again = f"provision {result.command}" + (f" {plan_path}" if plan_path else "")
    if result.rollback is not None:  # --on-failure rollback: nothing is left to resume
        console.print(f"Its changes are rolled back (below). Fix the cause and run "
                      f"[bold]{again}[/] again.", highlight=False)
        return
    console.print(f"Fix the cause and run [bold]{again}[/] again: it resumes where this stopped.",
                  highlight=False)
    if result.command == "apply":
        undo = "provision rollback" + (f" {plan_path}" if plan_path else "")
        console.print(f"Or undo what this apply changed: [bold]{undo}[/].", highlight=False)


VERDICTS = {"ok": "green", "warning": "yellow", "broken": "red", "unknown": "magenta"}


def render_report(report: Report) -> Group:
    """`provision verify`: a table per request path (hop, status, step, evidence and, for a
    broken hop, the fix), then the counts."""
    parts: list[Any] = []
    for path in report.paths:
        colour = VERDICTS[path.status]
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      title=f"[{colour}]{path.status}[/]  {escape(path.name)}  "
                      f"{escape(path.request)}",
                      title_justify="left")
        table.add_column("hop", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("step", overflow="fold")
        table.add_column("evidence", overflow="fold", ratio=1)
        for hop in path.hops:
            text = Text(hop.evidence)
            if hop.fix:
                text.append(f"\nfix: {hop.fix}", style="bold")
            table.add_row(hop.name, Text(hop.status, style=VERDICTS[hop.status]),
                          Text(hop.step or ""), text)
        parts.append(table)
    counts = report.counts()
    if not report.paths:
        parts.append(Text("No request paths to verify: the ledger holds no API proxy with "
                          "targets.", style="yellow"))
    hops = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    parts.append(Text(f"{plural(len(report.paths), 'path')}: {report.status} ({hops or 'no hops'})",
                      style=VERDICTS[report.status]))
    return Group(*parts)


def simulated_times(scale: float | None) -> str:
    """What an emulator's times are: on its virtual clock, Google's durations; on a wall clock
    at a time scale, Google's durations and provision's own work, both divided by the scale."""
    if scale is None or scale == 1:
        return "times: Google's, simulated"
    return (f"times: simulated, the wall clock x {1 / scale:g}: provision's own work counts "
            f"x {1 / scale:g} too; the emulator's default virtual clock counts only Google's")
