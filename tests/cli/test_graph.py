"""`provision graph` and `Deployment.graph()`: every step and edge of a reference plan, grouped
by project and network, coloured by the ledger."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import orchestrator
from orchestrator import graph
from orchestrator.cli import app
from orchestrator.plan import load_plan
from provision_emulator import Emulator

from ..engine.conftest import BASICS

PLAN = Path(__file__).parents[2] / "plans" / "psc-cloud-run.yaml"
NODE = re.compile(r'^\s*(s_\w+)\["([^<"]+)<br/>.*:::(\w+)$')
EDGE = re.compile(r"^\s*(s_\w+) --> (s_\w+)$")

runner = CliRunner()


def _parse(text: str) -> tuple[dict[str, str], dict[str, str], set[tuple[str, str]], dict]:
    """step -> status, step -> the subgraph labels around it, edges as step pairs."""
    ids: dict[str, str] = {}
    status: dict[str, str] = {}
    within: dict[str, list[str]] = {}
    stack: list[str] = []
    edges = set()
    for line in text.splitlines():
        if m := re.match(r'^\s*subgraph \w+\["([^"]+)"\]$', line):
            stack.append(m.group(1))
        elif line.strip() == "end":
            stack.pop()
        elif m := NODE.match(line):
            ids[m.group(1)] = m.group(2)
            status[m.group(2)] = m.group(3)
            within[m.group(2)] = list(stack)
        elif m := EDGE.match(line):
            edges.add((ids[m.group(1)], ids[m.group(2)]))
    return status, within, edges, ids


def test_mermaid_has_every_step_and_edge_grouped_by_project_and_network() -> None:
    result = runner.invoke(app, ["graph", str(PLAN), "--ledger", "/nonexistent/ledger.json"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("flowchart LR\n")
    status, within, edges, _ = _parse(result.output)
    plan = load_plan(PLAN)
    assert set(status) == {step.id for step in plan.steps}
    assert edges == {(dep, step.id) for step in plan.steps for dep in step.deps}
    assert set(status.values()) == {graph.NOT_APPLIED}
    for step in plan.steps:
        project = step.scope.get("project", "apigee-demo-project")  # Apigee: the org's project
        assert within[step.id][0] == f"project {project}", step.id
    assert within["psa"] == ["project apigee-demo-project", "network apigee-vpc"]
    assert within["forwarding-rule"] == ["project backend-demo-project", "network backend-vpc"]
    assert within["orders"] == ["project backend-demo-project"]


def test_status_follows_the_ledger_through_apply_and_destroy(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = tmp_path / "basics.yaml"
    plan.write_text(BASICS)
    dep = orchestrator.load(plan, emulator=emulator,
                            state_dir=tmp_path / ".provision")
    assert set(_parse(dep.graph())[0].values()) == {"not_applied"}
    assert dep.apply().ok
    assert _parse(dep.graph())[0] == {"vpc": "present", "subnet": "present", "fw": "present"}
    assert dep.destroy().ok
    assert set(_parse(dep.graph())[0].values()) == {"not_applied"}
    dep.close()


def test_failed_and_in_flight_records_are_coloured() -> None:
    plan = load_plan(PLAN)
    ledger = SimpleNamespace(resources={"org": SimpleNamespace(status="failed"),
                                        "instance": SimpleNamespace(status="in_flight"),
                                        "apigee-vpc": SimpleNamespace(status="present")})
    nodes = {n.step: n.status for n in graph.build(plan, ledger).nodes}
    assert (nodes["org"], nodes["instance"], nodes["apigee-vpc"], nodes["env"]) == (
        "failed", "pending", "present", "not_applied")
    text = graph.to_mermaid(graph.build(plan, ledger))
    assert "classDef failed" in text
    assert 's_org["org<br/><small>apigee.organization</small>"]:::failed' in text


def test_svg_without_graphviz_exits_2_with_the_install_hint(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = runner.invoke(app, ["graph", str(PLAN), "--format", "svg"])
    assert result.exit_code == 2
    assert "apt-get install graphviz" in result.output


def test_svg_is_drawn_by_dot_from_the_dot_text(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    # A stand-in `dot` that wraps what it reads: the test checks the wiring, not Graphviz.
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\n[ "$1" = "-Tsvg" ] || exit 9\necho "<svg>"; cat; echo "</svg>"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    out = tmp_path / "plan.svg"
    result = runner.invoke(app, ["graph", str(PLAN), "--format", "svg", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("<svg>") and 'subgraph cluster_project_0 { label="project apigee' in text
    assert '"service-attachment" -> "endpoint-attachment";' in text


def test_unknown_format_exits_2() -> None:
    result = runner.invoke(app, ["graph", str(PLAN), "--format", "png"])
    assert result.exit_code == 2 and "mermaid" in result.output
