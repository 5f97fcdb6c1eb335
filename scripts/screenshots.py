"""The README's pictures, made again: architecture A applied on the embedded emulator, caught
halfway (the terminal's live display, and the plan graph coloured by the ledger at that moment)
and at the end.

    python scripts/screenshots.py [--out docs]

Writes apply-live.svg, apply-done.svg and, where Graphviz's `dot` is installed (apt-get install
graphviz; brew install graphviz), psc-cloud-run-graph.svg. The emulator and the ledger live in a
temporary directory: nothing under .provision/ is touched. The times are Google's durations on
the emulator's virtual clock, as `provision apply --emulator` shows them.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

import orchestrator
from orchestrator import graph
from orchestrator.display import LiveDisplay, render_result
from orchestrator.engine.events import Event
from orchestrator.ledger import open_store

ROOT = Path(__file__).parents[1]
PLAN = ROOT / "plans" / "psc-cloud-run.yaml"
COMMAND = "provision apply plans/psc-cloud-run.yaml --emulator"
WIDTH = 72
# The frame is taken while Apigee's organization is being created (a long operation), at the
# moment the most other steps run beside it: the backend's load balancer coming together.
WHILE = "org"


def _console() -> Console:
    return Console(record=True, width=WIDTH, file=io.StringIO(), force_terminal=True,
                   color_system="truecolor", highlight=False)


class Halfway:
    """Feeds the live display, and records its frame and the plan graph coloured by the ledger
    at the moment the most steps are running while step WHILE is."""

    def __init__(self, display: LiveDisplay, deployment: Any) -> None:
        self.display = display
        self.deployment = deployment
        self.started: set[str] = set()
        self.ended: set[str] = set()
        self.most_running = 0
        self.frame: str | None = None
        self.graph: str | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        self.display(event)
        with self._lock:
            if event.type == "step_started":
                self.started.add(event.step or "")
            elif event.type in ("step_finished", "step_failed"):
                self.ended.add(event.step or "")
            running = len(self.started - self.ended)
            if WHILE not in self.started - self.ended or running <= self.most_running:
                return
            self.most_running = running
            console = _console()
            console.print(self.display)
            self.frame = console.export_svg(title=COMMAND)
            # Read by a store of its own, as a second terminal running `provision graph` would.
            recorded = open_store(self.deployment.ledger_location).load()
            drawing = graph.build(self.deployment.plan, recorded)
            self.graph = graph.render(drawing, "svg") if shutil.which("dot") else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("dot") is None:
        print(f"no graph picture: {graph.INSTALL_HINT}")
    with (
        tempfile.TemporaryDirectory(prefix="provision-screenshots-") as state,
        orchestrator.load(PLAN, emulator="embedded", state_dir=state) as deployment,
    ):
        display = LiveDisplay(_console(), [step.id for step in deployment.plan.steps],
                              clock=deployment.clock.now, simulated=True)
        halfway = Halfway(display, deployment)
        deployment.on_event = halfway
        result = deployment.apply()
    if not result.ok or halfway.frame is None:
        raise SystemExit(f"the apply did not go as the pictures need: {result.failures}")
    done = _console()
    done.print(display)
    render_result(done, result, str(PLAN.relative_to(ROOT)))
    pictures = {"apply-live.svg": halfway.frame, "apply-done.svg": done.export_svg(title=COMMAND),
                "psc-cloud-run-graph.svg": halfway.graph}
    for name, svg in pictures.items():
        if svg is None:
            continue
        (out / name).write_text(svg)
        print(out / name)


if __name__ == "__main__":
    main()
