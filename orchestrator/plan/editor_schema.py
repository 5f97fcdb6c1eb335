"""A JSON Schema (draft 2020-12) of the plan format, for editors (`provision schema`).

The file's structure comes from the same pydantic model the validator uses; each kind's
`properties` come from its discovery schema (output-only fields left out), selected by `kind`
with if/then. Wherever a plan may write a `${...}` reference instead of a value, the schema
accepts one.
"""

from __future__ import annotations

from typing import Any

from google_facts import discovery
from orchestrator import kinds
from orchestrator.plan.structure import EXTENSION_PREFIX, SCOPE_FIELDS, PlanSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_REF = {"$ref": "#/$defs/reference"}


def plan_json_schema() -> dict[str, Any]:
    schema = PlanSpec.model_json_schema()
    schema["$schema"] = DIALECT
    schema["title"] = "provision plan"
    schema["patternProperties"] = {f"^{EXTENSION_PREFIX}": {}}  # free blocks for YAML anchors
    defs = schema["$defs"]
    for section in ("vars", "secrets"):  # names outside the pattern are errors, as in the validator
        schema["properties"][section]["anyOf"][0]["additionalProperties"] = False
    defs["reference"] = {
        "type": "string",
        "pattern": r"^\$\{[^}]+\}$",
        "description": "${vars.NAME}, ${secrets.NAME} or ${STEP.OUTPUT}",
    }
    step = defs["StepSpec"]
    registry = kinds.registry()
    step["properties"]["kind"]["enum"] = sorted(registry)
    for kind in registry.values():
        for name in kind.scope:
            if name not in SCOPE_FIELDS:
                step["properties"].setdefault(name, {"type": "string"})
    converter = _Converter(defs)
    step["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": kind.name}}, "required": ["kind"]},
            "then": {
                "properties": {
                    "properties": {
                        "anyOf": [
                            # the name is the step's own `name:`
                            {
                                "$ref": converter.ref(kind.schema_document, kind.schema,
                                                      kind.settable),
                                "properties": {"name": False},
                            },
                            {"type": "null"},
                        ]
                    }
                }
            },
        }
        for kind in sorted(registry.values(), key=lambda k: k.name)
    ]
    return schema


class _Converter:
    """Discovery schemas to JSON Schema `$defs`, named "api.Schema"."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def ref(self, api: str, name: str, settable: frozenset[str] = frozenset()) -> str:
        """settable: output-only fields of this schema a kind lets the plan set."""
        key = f"{api}.{name}" + "".join(f"+{f}" for f in sorted(settable))
        if key not in self.defs:
            self.defs[key] = {}  # claimed first, so recursive schemas end
            self.defs[key] = self._object(api, discovery.schema(api, name), settable)
        return f"#/$defs/{key}"

    def _object(self, api: str, prop: dict[str, Any],
                settable: frozenset[str] = frozenset()) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if prop.get("description"):
            out["description"] = prop["description"]
        props = prop.get("properties")
        extra = prop.get("additionalProperties")
        if props is not None:
            out["properties"] = {
                k: self.convert(api, v) for k, v in props.items()
                if k in settable or not discovery.is_output_only(v)
            }
            out["additionalProperties"] = False
        elif extra is not None:
            out["additionalProperties"] = self.convert(api, extra)
        return out

    def convert(self, api: str, prop: dict[str, Any]) -> dict[str, Any]:
        described = {"description": prop["description"]} if prop.get("description") else {}
        if "$ref" in prop:
            return {"anyOf": [{"$ref": self.ref(api, prop["$ref"])}, _REF], **described}
        kind = prop.get("type", "any")
        if kind == "object":
            body = self._object(api, prop)
        elif kind == "array":
            body = {"type": "array", "items": self.convert(api, prop.get("items", {}))}
        elif kind == "string" and prop.get("format") in ("int64", "uint64"):
            body = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^-?\d+$"}]}
        elif kind == "string":
            if "enum" not in prop:
                return {"type": "string", **described}  # a reference is a string already
            body = {"enum": list(prop["enum"])}
        elif kind == "integer":
            body = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^-?\d+$"}]}
        elif kind in ("number", "boolean"):
            body = {"type": kind}
        else:
            return {**described}
        body.pop("description", None)
        return {"anyOf": [body, _REF], **described}
