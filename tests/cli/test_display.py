"""The live display's table: where the run is, and no stale operation state on finished steps."""

from __future__ import annotations

import io

from rich.console import Console

from orchestrator.display import LiveDisplay
from orchestrator.engine.events import Event

from .terminal import on_a_terminal, plain


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
    console.export_text()  # the lines printed as steps ended (no terminal): not the frame
    console.print(display)
    frame = console.export_text().splitlines()
    rows = {line.split()[0]: line for line in frame if line.split()}
    assert "RUNNING" in rows["vpc"] and "progress" in rows["vpc"]
    assert "finished" in rows["proxy"] and "PROGRESSING" not in rows["proxy"]
    assert "needs vpc" in rows["zone"]
    assert frame[0].strip() == "1 finished, 1 running, 1 skipped, 1 waiting"


def test_a_frame_fits_its_terminal_the_summary_first_and_the_latest_steps_shown() -> None:
    """64 steps in a 30-row terminal: the summary, and as many rows as fit, those under way
    first, then the latest finished; the rest counted. Times say they are simulated."""
    steps = [f"step-{i:02}" for i in range(64)]
    now = [0.0]
    console = Console(record=True, width=100, height=30, file=io.StringIO())
    display = LiveDisplay(console, steps, clock=lambda: now[0], simulated=True)
    for i, step in enumerate(steps[:60]):
        now[0] = float(i)
        display(Event("step_started", step=step, kind="compute.network", action="create"))
        if i < 50:
            display(Event("step_finished", step=step, action="create"))
    assert "step-00: created (0.0 s simulated)" in console.export_text()  # no terminal: lines
    console.print(display)
    frame = console.export_text().splitlines()
    assert len(frame) <= 30
    assert frame[0].strip() == ("50 finished, 10 running, 4 waiting (33 finished not shown) "
                                "(times: Google's, simulated)")
    shown = {line.split()[0] for line in frame[1:] if line.split()}
    assert {f"step-{i:02}" for i in range(50, 60)} <= shown  # every step under way
    assert "step-49" in shown and "step-00" not in shown  # the latest finished, not the first


def test_on_a_30_row_terminal_the_summary_stays_in_view_of_a_64_step_run(tmp_path) -> None:
    """Through a pseudo-terminal of 30 rows: the frames Rich draws while 64 firewalls are made
    each carry the summary line, which a frame cut at the bottom used to lose."""
    rules = "".join(
        f"  - {{id: fw-{i:02}, kind: compute.firewall, name: fw-{i:02}, properties: "
        f"{{network: '${{vpc.selfLink}}', sourceRanges: [10.0.{i}.0/24], "
        f"allowed: [{{IPProtocol: tcp, ports: ['443']}}]}}}}\n" for i in range(63))
    plan = tmp_path / "wide.yaml"
    plan.write_text("name: wide\ndefaults: {project: tty-project}\nsteps:\n"
                    "  - {id: vpc, kind: compute.network, name: tty-vpc, "
                    "properties: {autoCreateSubnetworks: false}}\n" + rules)
    status, shown = on_a_terminal(tmp_path, ["apply", str(plan), "--emulator", "--yes"],
                                  rows=30, columns=120)
    text = plain(shown)
    assert status == 0, text[-2000:]
    assert "Reading what exists of 64 steps" in text
    assert "running" in text and "finished not shown" in text
    assert "(times: Google's, simulated)" in text
    assert "apply complete: 64 created." in text
