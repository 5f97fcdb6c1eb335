"""The live display's table: where the run is, and no stale operation state on finished steps."""

from __future__ import annotations

import io

from rich.console import Console

from orchestrator.display import LiveDisplay
from orchestrator.engine.events import Event


def test_live_table_counts_the_steps_and_clears_a_finished_step_s_progress() -> None:
    console = Console(record=True, width=100, file=io.StringIO())
    display = LiveDisplay(console, ["vpc", "subnet", "proxy", "zone"])
    for step in ("vpc", "proxy"):
        display(Event("step_started", step=step, kind="compute.network", action="create",
                      resource=f"projects/p/global/networks/{step}"))
    display(Event("step_progress", step="vpc", message="RUNNING"))
    display(Event("step_progress", step="proxy", message="deployment PROGRESSING"))
    display(Event("step_finished", step="proxy", action="create"))
    display(Event("step_skipped", step="zone", message="needs vpc"))
    console.print(display)
    frame = console.export_text().splitlines()
    rows = {line.split()[0]: line for line in frame if line.split()}
    assert "RUNNING" in rows["vpc"] and "progress" in rows["vpc"]
    assert "finished" in rows["proxy"] and "PROGRESSING" not in rows["proxy"]
    assert "needs vpc" in rows["zone"]
    assert frame[-1].strip() == "1 finished, 1 running, 1 skipped, 1 waiting"
