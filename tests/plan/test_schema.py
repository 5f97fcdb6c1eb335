"""The editor's JSON Schema of the plan format."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from orchestrator import kinds
from orchestrator.plan import plan_json_schema
from orchestrator.plan.source import parse


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return plan_json_schema()


@pytest.fixture
def sample_data(sample) -> dict[str, Any]:
    data, _, diagnostics = parse(sample.read_text(), str(sample))
    assert not diagnostics
    return data


def test_shape(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(schema)) == schema
    assert set(schema["required"]) == {"name", "steps"}
    step = schema["$defs"]["StepSpec"]
    assert step["properties"]["kind"]["enum"] == kinds.names()
    selected = [rule["if"]["properties"]["kind"]["const"] for rule in step["allOf"]]
    assert selected == kinds.names()
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"]


def test_kind_properties_come_from_discovery_without_output_only_fields(schema):
    network = schema["$defs"]["compute.Network"]
    assert network["additionalProperties"] is False
    assert "autoCreateSubnetworks" in network["properties"]
    assert "selfLink" not in network["properties"] and "id" not in network["properties"]
    mode = schema["$defs"]["compute.NetworkRoutingConfig"]["properties"]["routingMode"]
    assert {"enum": ["GLOBAL", "REGIONAL"]} in mode["anyOf"]  # or a ${...} reference
    assert {"$ref": "#/$defs/reference"} in mode["anyOf"]


def test_is_valid_json_schema_and_accepts_the_reference_plan(schema, sample_data):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(sample_data)) == []
    bad = copy.deepcopy(sample_data)
    bad["steps"][1]["properties"]["ipCidrRnage"] = "10.0.0.0/24"
    bad["steps"][2]["kind"] = "compute.nope"
    paths = sorted(list(e.absolute_path) for e in validator.iter_errors(bad))
    assert paths == [["steps", 1, "properties"], ["steps", 2, "kind"]]
