"""Whatever the input, loading a plan gives a Plan or a PlanError: never another exception."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.plan import (
    Plan,
    PlanError,
    RefSyntaxError,
    load_plan,
    load_plan_text,
    resolve,
    source,
)

SAMPLE = Path(__file__).resolve().parents[2] / "plans" / "network-basics.yaml"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis folder in the work tree
    suppress_health_check=[HealthCheck.too_slow],
)

NASTY = [
    "${",
    "$${",
    "${vars.project}",
    "${secrets.x}",
    "${vpc.selfLink}",
    "${vpc.peerings.0.name}",
    "${vpc}",
    "'; DROP TABLE steps; --",
    "$(rm -rf /)",
    "`id`",
    "../../etc/passwd",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "\u202egnp.exe",
    "\x00",
    "\ufeff",
    "e\u0301",
    "🦄" * 50,
    "a" * 5000,
    "1" * 5000,
    "-1e400",
    ".nan",
    "~",
    "<<",
    "*alias",
    "&anchor",
    "!!python/object/apply:os.system",
    "compute.network",
    "compute.netwrk",
    "10m",
    "-5",
    "https://x",
    "ftp://x",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.sampled_from(NASTY)), inner, max_size=4),
    ),
    max_leaves=20,
)


def _check(outcome: Any) -> None:
    assert isinstance(outcome, (Plan, PlanError))
    if isinstance(outcome, PlanError):
        assert outcome.diagnostics
        for d in outcome.diagnostics:
            assert str(d) and d.line >= 0 and d.col >= 0


def _load_text(text: str, vars: dict[str, Any] | None = None) -> Any:
    try:
        return load_plan_text(text, "fuzz.yaml", vars)
    except PlanError as e:
        return e


@FUZZ
@given(st.text(max_size=300))
def test_any_text(text):
    _check(_load_text(text))


YAML_TOKENS = [
    "- ",
    ": ",
    "\n",
    "  ",
    "    ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "!!str ",
    "!!int ",
    "!x ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "? ",
    "|\n",
    ">-\n",
    "'",
    '"',
    "# c",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2000:\n",
    "\t",
    "\\",
    "name",
    "steps",
    "id",
    "kind",
    "vars",
    "properties",
    "depends_on",
    "timeout",
    "secrets",
    "defaults",
    "project",
    "x",
    "1",
    "-1.5e3",
    "null",
    "true",
    "${vars.x}",
    "${a.b}",
    "$${",
    "\u00e9",
    "\U0001f984",
    "\x00",
]
yaml_ish = st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join)


@FUZZ
@given(yaml_ish)
def test_yaml_like_text(text):
    _check(_load_text(text))


@FUZZ
@given(st.one_of(yaml_ish, st.text(max_size=200)))
def test_yaml_like_text_with_the_pure_python_parser(text):
    # What a machine without ruamel's libyaml extension runs.
    with mock.patch.object(source, "CParser", None):
        _check(_load_text(text))


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_in_a_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_bytes(data)
        try:
            outcome: Any = load_plan(path)
        except PlanError as e:
            outcome = e
    _check(outcome)


@FUZZ
@given(json_values)
def test_any_json_document(value):
    # JSON is YAML: this reaches the checks with every type in every place.
    _check(_load_text(json.dumps(value, ensure_ascii=False)))


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


SAMPLE_DATA = {
    "name": "network-basics",
    "vars": {"project": "demo-project", "region": "europe-west1"},
    "defaults": {"project": "${vars.project}", "region": "${vars.region}"},
    "secrets": {"psk": {"env": "PSK"}},
    "endpoints": {"compute": "https://compute-psc.p.googleapis.com"},
    "steps": [
        {
            "id": "vpc",
            "kind": "compute.network",
            "name": "demo-vpc",
            "timeout": "10m",
            "properties": {
                "autoCreateSubnetworks": False,
                "routingConfig": {"routingMode": "GLOBAL"},
            },
        },
        {
            "id": "subnet",
            "kind": "compute.subnetwork",
            "name": "demo-subnet",
            "depends_on": ["vpc"],
            "properties": {"network": "${vpc.selfLink}", "ipCidrRange": "10.10.0.0/24"},
        },
        {
            "id": "allow-internal",
            "kind": "compute.firewall",
            "name": "demo-allow-internal",
            "properties": {
                "network": "${vpc.selfLink}",
                "sourceRanges": ["${subnet.ipCidrRange}"],
                "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
            },
        },
    ],
}
SAMPLE_PATHS = _paths(SAMPLE_DATA)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(SAMPLE_PATHS), json_values), min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(["project", "region", "nope", "🦄"]), st.text(max_size=20)),
)
def test_a_valid_plan_with_random_values_in_random_places(edits, overrides):
    data: Any = SAMPLE_DATA
    for path, value in edits:
        try:
            data = _replace(data, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the place
    _check(_load_text(json.dumps(data, ensure_ascii=False), overrides))


@FUZZ
@given(st.text(max_size=40), st.text(max_size=20))
def test_odd_names_and_vars_in_yaml_syntax(name, var):
    text = (
        SAMPLE.read_text()
        .replace("demo-vpc", json.dumps(name))
        .replace("demo-project", json.dumps(var))
    )
    _check(_load_text(text, {"region": var}))


@FUZZ
@given(st.text(max_size=60))
def test_resolve_takes_any_string(text):
    with contextlib.suppress(RefSyntaxError):
        resolve({"a": [text]}, lambda ref: ref.text)


def test_the_sample_still_loads():
    assert isinstance(_load_text(json.dumps(SAMPLE_DATA)), Plan)
