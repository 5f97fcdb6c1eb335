"""The plan as a picture: steps grouped by project and network, dependencies as edges,
coloured by what the ledger records. Text only (Mermaid, Graphviz DOT); turning DOT into SVG
needs Graphviz's `dot`, which is not a Python dependency."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html import escape
from typing import Any

from orchestrator.plan.refs import find_refs

FORMATS = ("mermaid", "dot", "svg")
INSTALL_HINT = (
    "SVG needs Graphviz's `dot`: install it (Debian/Ubuntu: apt-get install graphviz; "
    "macOS: brew install graphviz), or use --format mermaid"
)

# Ledger statuses collapsed into what a reader needs to see; a step the ledger does not know
# has not been applied yet.
STATUS_OF = {"present": "present", "failed": "failed", "pending": "pending",
             "in_flight": "pending", "deleting": "pending", "gone": "failed"}
NOT_APPLIED = "not_applied"
COLOURS = {  # fill, stroke
    "present": ("#d4f7d4", "#2e7d32"),
    "failed": ("#ffd6d6", "#c62828"),
    "pending": ("#fff3c4", "#b28704"),
    NOT_APPLIED: ("#eeeeee", "#9e9e9e"),
    # With `verify`: each step by the worst hop that names it.
    "ok": ("#d4f7d4", "#2e7d32"),
    "warning": ("#fff3c4", "#b28704"),
    "broken": ("#ffd6d6", "#c62828"),
    "unknown": ("#ead7f7", "#7b1fa2"),
}
# With `verify`, a step no hop names: not on any request path that was walked.
OFF_PATH = "off_path"
COLOURS[OFF_PATH] = ("#ffffff", "#bdbdbd")


class GraphvizMissing(RuntimeError):
    """`dot` is not on PATH."""


@dataclass(frozen=True)
class Node:
    step: str
    kind: str
    name: str
    project: str
    network: str | None
    status: str


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]  # (dependency, dependent)

    def groups(self) -> dict[str, dict[str | None, list[Node]]]:
        """project -> network (None: none named) -> nodes, in plan order."""
        out: dict[str, dict[str | None, list[Node]]] = {}
        for node in self.nodes:
            out.setdefault(node.project, {}).setdefault(node.network, []).append(node)
        return out


def build(plan: Any, ledger: Any = None, verdicts: dict[str, str] | None = None) -> Graph:
    """The graph of a plan; `ledger` (optional) gives each step's status, or `verdicts` (step
    -> the worst verify status of the hops that name it) what verify found."""
    by_id = {step.id: step for step in plan.steps}
    resources = ledger.resources if ledger is not None else {}
    projects: dict[str, str] = {}
    nodes = []
    for step in plan.steps:
        projects[step.id] = _project(step, by_id, projects)
        record = resources.get(step.id)
        status = STATUS_OF.get(record.status, "pending") if record is not None else NOT_APPLIED
        if verdicts is not None:
            status = verdicts.get(step.id, OFF_PATH)
        nodes.append(Node(step.id, step.kind, step.name, projects[step.id],
                          _network(step, by_id), status))
    edges = tuple((dep, step.id) for step in plan.steps for dep in sorted(step.deps)
                  if dep in by_id)
    return Graph(tuple(nodes), edges)


def _project(step: Any, by_id: dict[str, Any], known: dict[str, str]) -> str:
    if step.scope.get("project"):
        return str(step.scope["project"])
    # Apigee resources live under an organization, which is named after its project.
    if step.kind == "apigee.organization":
        return step.name
    for ref in find_refs(step.scope.get("organization", "")):
        if ref.scope == "step" and ref.target in known:
            return known[ref.target]
    organization = step.scope.get("organization")
    return f"organization {organization}" if organization else "(no project)"


def _network(step: Any, by_id: dict[str, Any]) -> str | None:
    """The network a step names (its scope's or its properties' `network`), by name."""
    if step.kind == "compute.network":
        return step.name
    value = step.scope.get("network") or step.properties.get("network")
    if not isinstance(value, str) or not value:
        return None
    for ref in find_refs(value):
        if ref.scope == "step" and ref.target in by_id:
            return by_id[ref.target].name
    return value.rstrip("/").rsplit("/", 1)[-1]


def _mermaid_ids(graph: Graph) -> dict[str, str]:
    """Mermaid ids are word characters only; two step ids that differ only in punctuation
    (a-b, a_b) get distinct ones."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for node in graph.nodes:
        ident = "s_" + re.sub(r"\W", "_", node.step)
        while ident in taken:
            ident += "_"
        taken.add(ident)
        ids[node.step] = ident
    return ids


def to_mermaid(graph: Graph) -> str:
    ids = _mermaid_ids(graph)
    lines = ["flowchart LR"]
    for p, (project, networks) in enumerate(graph.groups().items()):
        lines.append(f'  subgraph project_{p}["project {project}"]')
        for n, (network, nodes) in enumerate(networks.items()):
            indent = "    "
            if network is not None:
                lines.append(f'    subgraph network_{p}_{n}["network {network}"]')
                indent = "      "
            for node in nodes:
                lines.append(f'{indent}{ids[node.step]}["{node.step}<br/>'
                             f'<small>{node.kind}</small>"]:::{node.status}')
            if network is not None:
                lines.append("    end")
        lines.append("  end")
    for dep, step in graph.edges:
        lines.append(f"  {ids[dep]} --> {ids[step]}")
    for status, (fill, stroke) in COLOURS.items():
        lines.append(f"  classDef {status} fill:{fill},stroke:{stroke}")
    return "\n".join(lines) + "\n"


def to_dot(graph: Graph) -> str:
    # Top to bottom: a plan's dependency chains are long (15 steps across architecture A's two
    # projects) and its ranks narrow, so left to right draws a strip too wide to read.
    lines = ["digraph plan {", "  rankdir=TB; ranksep=0.35; nodesep=0.2;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  graph [fontname="Helvetica"];']
    for p, (project, networks) in enumerate(graph.groups().items()):
        lines.append(f'  subgraph cluster_project_{p} {{ label="project {project}"; '
                     'style=rounded; color="#5c6bc0";')
        for n, (network, nodes) in enumerate(networks.items()):
            if network is not None:
                lines.append(f'    subgraph cluster_network_{p}_{n} {{ label="network {network}";'
                             ' style=dashed; color="#90a4ae";')
            for node in nodes:
                fill, stroke = COLOURS[node.status]
                # The kind smaller and grey: the step id is what a reader looks for.
                label = (f'<<b>{escape(node.step)}</b><br/><font point-size="8" '
                         f'color="#555555">{escape(node.kind)}</font>>')
                lines.append(f'      "{node.step}" [label={label}, '
                             f'fillcolor="{fill}", color="{stroke}"];')
            if network is not None:
                lines.append("    }")
        lines.append("  }")
    for dep, step in graph.edges:
        lines.append(f'  "{dep}" -> "{step}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(graph: Graph) -> str:
    """Rendered by Graphviz's `dot`; GraphvizMissing when it is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(INSTALL_HINT)
    done = subprocess.run([dot, "-Tsvg"], input=to_dot(graph), capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout


def render(graph: Graph, fmt: str = "mermaid") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}[fmt](graph)
