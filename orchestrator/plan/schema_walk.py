"""Following a field path through a discovery schema: for output references and suggestions."""

from __future__ import annotations

from typing import Any

from google_facts import discovery
from orchestrator.kinds.base import Kind
from orchestrator.plan.errors import did_you_mean


def _resolve(doc: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    return doc["schemas"].get(prop["$ref"], {}) if "$ref" in prop else prop


def output_error(kind: Kind, path: tuple[str | int, ...]) -> str | None:
    """Why `path` is not an output of `kind`, or None when it is.

    Any field of the resource as read back is an output (output-only ones above all: selfLink,
    ipAddress...), and so are the names the kind adds in `outputs`.
    """
    doc = discovery.document(kind.schema_document)
    prop = _resolve(doc, {"$ref": kind.schema})
    if path[0] in kind.outputs and path[0] not in (prop.get("properties") or {}):
        return None  # the kind computes these; their insides are its business
    walked: list[str] = []
    for part in path:
        kind_of = prop.get("type", "any")
        here = ".".join(walked) or kind.name
        if kind_of == "object":
            props = prop.get("properties")
            extra = prop.get("additionalProperties")
            if props is not None and str(part) in props:
                prop = _resolve(doc, props[str(part)])
            elif extra is not None:
                prop = _resolve(doc, extra)
            elif props is None:
                return None  # a free-form object: anything may be in it
            else:
                names = list(props) + ([] if walked else list(kind.outputs))
                return f"{here} has no field '{part}'" + did_you_mean(str(part), names)
        elif kind_of == "array":
            if not isinstance(part, int):
                return f"{here} is a list: index it with a number, as in {here}.0"
            prop = _resolve(doc, prop.get("items", {}))
        elif kind_of == "any":
            return None
        else:
            return f"{here} is a {kind_of} and has no field '{part}'"
        walked.append(str(part))
    return None


def field_names(api: str, schema: str, path: tuple[str | int, ...]) -> list[str]:
    """The settable field names of the object at `path` within `schema` (for suggestions)."""
    doc = discovery.document(api)
    prop = _resolve(doc, {"$ref": schema})
    for part in path:
        if prop.get("type") == "array":
            prop = _resolve(doc, prop.get("items", {}))
        else:
            sub = (prop.get("properties") or {}).get(str(part)) or prop.get("additionalProperties")
            if not isinstance(sub, dict):
                return []
            prop = _resolve(doc, sub)
    return [n for n, p in (prop.get("properties") or {}).items() if not discovery.is_output_only(p)]
