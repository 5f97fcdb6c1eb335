"""The example notebook runs top to bottom in a real Jupyter kernel (nbclient + ipykernel):
plan, graph, apply on the embedded emulator, outputs, ledger, destroy. Missing Jupyter packages
fail this test (they are in the test extras), they never skip it."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "plans" / "psc-cloud-run.ipynb"


def _shown(cell: dict) -> str:
    """Everything a cell displayed, in every format it offered."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.extend(str(value) for value in output.get("data", {}).values())
    return "\n".join(parts)


def test_example_notebook_runs_and_shows_what_it_built() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Raises CellExecutionError, naming the cell, on any exception in the notebook.
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    loaded, preview, graph_before, applied, outputs, graph_after, ledger, destroyed = (
        _shown(cell) for cell in code)
    assert "psc-cloud-run: 55 steps" in loaded
    assert "54 to add, 1 to change" in preview and "<table>" in preview
    assert "endpoint-attachment" in preview
    assert "flowchart LR" in graph_before and ":::not_applied" in graph_before
    assert "apply" in applied and "complete" in applied
    assert "service-attachment: created (" in applied  # progress, step by step
    assert "cloud-run-psc" in outputs and "load balancer" in outputs
    assert ":::present" in graph_after and ":::not_applied" not in graph_after
    assert "Ledger" in ledger and ledger.count(">present<") == 55
    assert "destroy" in destroyed and "complete" in destroyed
