"""The ownership marker a created resource carries: which ledger (lineage) and step made it.

A run killed after Google accepted a create but before the ledger recorded it finds the
resource on resume by reading before creating; the marker tells it apart from a resource of
the same name that someone else made. It goes into `labels` where the resource has them,
else into `description`, and is ignored when comparing the plan with what is live.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from google_facts import discovery
from orchestrator.kinds.base import Kind

LINEAGE_LABEL = "provision-lineage"
STEP_LABEL = "provision-step"
# The step id runs to the marker's last "]": a generated step's id ends in its own (net[a]).
_DESCRIPTION = re.compile(r"\s*\[provision:([0-9a-f]+)/([^\s\[\]]+(?:\[[^\s\]]+\])?)\]$")


def marker_field(kind: Kind) -> str | None:
    """`labels`, `description`, or None when the resource has neither."""
    return _marker_field(kind.schema_document, kind.schema)


@functools.cache
def _marker_field(document: str, schema: str) -> str | None:
    props = discovery.schema(document, schema).get("properties", {})
    for name in ("labels", "description"):
        if name in props and not discovery.is_output_only(props[name]):
            return name
    return None


def _label_value(text: str) -> str:
    # Label values: up to 63 lowercase letters, digits, '_' and '-'.
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def mark(kind: Kind, body: dict[str, Any], lineage: str, step_id: str) -> dict[str, Any]:
    field = marker_field(kind)
    if field == "labels":
        labels = {**body.get("labels", {}), LINEAGE_LABEL: _label_value(lineage),
                  STEP_LABEL: _label_value(step_id)}
        return {**body, "labels": labels}
    if field == "description":
        text = body.get("description", "")
        return {**body, "description": f"{text} [provision:{lineage}/{step_id}]".strip()}
    return body


def owner(kind: Kind, live: dict[str, Any]) -> tuple[str, str] | None:
    """(lineage, step) of the marker a live resource carries, if any. Step ids come back in
    label form (lowercase) where the marker is a label."""
    field = marker_field(kind)
    if field == "labels":
        labels = live.get("labels") or {}
        if LINEAGE_LABEL in labels:
            return labels[LINEAGE_LABEL], labels.get(STEP_LABEL, "")
    elif field == "description":
        match = _DESCRIPTION.search(live.get("description") or "")
        if match:
            return match.group(1), match.group(2)
    return None


def is_ours(kind: Kind, live: dict[str, Any], lineage: str, step_id: str) -> bool:
    found = owner(kind, live)
    if found is None:
        return False
    field = marker_field(kind)
    wanted = (_label_value(lineage), _label_value(step_id)) if field == "labels" else (
        lineage, step_id)
    return found == wanted


def unmark(kind: Kind, live: dict[str, Any]) -> dict[str, Any]:
    """The live resource as the plan would describe it: without the marker."""
    field = marker_field(kind)
    if field == "labels" and live.get("labels"):
        labels = {k: v for k, v in live["labels"].items() if k not in (LINEAGE_LABEL, STEP_LABEL)}
        return {**live, "labels": labels}
    if field == "description" and live.get("description"):
        return {**live, "description": _DESCRIPTION.sub("", live["description"])}
    return live
