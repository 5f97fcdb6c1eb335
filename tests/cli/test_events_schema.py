"""`--json` events against their published schema: a full apply and destroy of architecture A,
each line validated, as a subprocess reading nothing but the CLI's stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema

from orchestrator.emulator import Emulator
from orchestrator.engine.events import SCHEMA_VERSION
from orchestrator.plan import load_plan

PLAN = Path(__file__).parents[2] / "plans" / "psc-cloud-run.yaml"
TIME_SCALE = 0.001


def _schema() -> dict:
    # Read as package data, the way an installed copy ships it.
    text = resources.files("orchestrator").joinpath("schemas/events.v1.json").read_text()
    return json.loads(text)


def _events(args: list[str], cwd: Path) -> list[dict]:
    env = {**os.environ, "PROVISION_TIME_SCALE": str(TIME_SCALE)}
    done = subprocess.run([sys.executable, "-m", "orchestrator", *args, "--json"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return [json.loads(line) for line in done.stdout.splitlines()]


def _validate(events: list[dict]) -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    for number, event in enumerate(events, 1):
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, f"line {number}: {event}: {[e.message for e in errors]}"


def test_schema_is_valid_and_matches_the_engine_version() -> None:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(
        {"version": SCHEMA_VERSION, "type": "diagnostic", "time": 0.0, "message": "m"})


def test_schema_rejects_what_the_contract_excludes() -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    base = {"version": SCHEMA_VERSION, "time": 0.0}
    assert not validator.is_valid({**base, "type": "step_started", "step": "a"})  # no kind...
    assert not validator.is_valid({**base, "type": "run_finished", "message": "maybe"})
    assert not validator.is_valid({**base, "type": "diagnostic", "message": "m", "extra": 1})
    assert not validator.is_valid({**base, "version": "2.0", "type": "diagnostic",
                                   "message": "m"})


def test_full_apply_and_destroy_events_validate(tmp_path: Path) -> None:
    plan = tmp_path / "psc-cloud-run.yaml"
    plan.write_text(PLAN.read_text().replace("demo-tls/", f"{PLAN.parent}/demo-tls/"))
    with Emulator(time_scale=TIME_SCALE) as emu:
        applied = _events(["apply", str(plan), f"--emulator={emu.url}"], tmp_path)
        destroyed = _events(["destroy", str(plan), f"--emulator={emu.url}", "--yes"], tmp_path)
    for events, command in ((applied, "apply"), (destroyed, "destroy")):
        _validate(events)
        assert events[0]["type"] == "run_started" and events[0]["message"] == command
        assert events[-1] == {**events[-1], "type": "run_finished", "message": "succeeded"}
    steps = {step.id for step in load_plan(plan).steps}
    assert {e["step"] for e in applied if e["type"] == "step_finished"} == steps
    assert {e["step"] for e in destroyed if e["type"] == "step_finished"} == steps
    assert any(e["type"] == "step_progress" for e in applied)  # operations were polled
