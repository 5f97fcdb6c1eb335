"""`--json` events against their published schema: every command that runs (apply, refresh,
import, rollback, destroy) on architecture A, each line validated, as a subprocess reading nothing
but the CLI's stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema

from orchestrator.engine.events import SCHEMA_VERSION
from orchestrator.plan import load_plan
from provision_emulator import Emulator

PLAN = Path(__file__).parents[2] / "plans" / "psc-cloud-run.yaml"


def _schema() -> dict:
    # Read as package data, the way an installed copy ships it.
    text = resources.files("orchestrator").joinpath("schemas/events.v1.json").read_text()
    return json.loads(text)


def _events(args: list[str], cwd: Path, returncode: int = 0) -> list[dict]:
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-m", "orchestrator", *args, "--json"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == returncode, done.stderr + done.stdout
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


def _run_of(events: list[dict], command: str, outcome: str = "succeeded") -> None:
    """Valid line by line, and framed as one run of `command`."""
    _validate(events)
    assert events[0]["type"] == "run_started" and events[0]["message"] == command
    assert events[-1] == {**events[-1], "type": "run_finished", "message": outcome}


def _steps(events: list[dict], type_: str, action: str | None = None) -> set[str]:
    return {e["step"] for e in events
            if e["type"] == type_ and action in (None, e.get("action"))}


def test_every_command_s_events_validate(tmp_path: Path) -> None:
    """apply, refresh, import (one that works, one refused), an apply that updates, rollback,
    destroy: every line of each against the schema."""
    plan = tmp_path / "psc-cloud-run.yaml"
    text = PLAN.read_text().replace("demo-tls/", f"{PLAN.parent}/demo-tls/")
    plan.write_text(text)
    steps = {step.id for step in load_plan(plan).steps}
    other = str(tmp_path / "other.ledger.json")
    with Emulator() as emu:
        url = f"--emulator={emu.url}"
        applied = _events(["apply", str(plan), url], tmp_path)
        refreshed = _events(["refresh", str(plan), url], tmp_path)
        # Into a ledger of its own, where nothing yet tells the subnet which network it is on;
        # the network, which the apply made, can be.
        refused = _events(["import", str(plan), "ilb-subnet", url, "--ledger", other], tmp_path,
                          returncode=1)
        imported = _events(["import", str(plan), "backend-vpc", url, "--ledger", other],
                           tmp_path)
        plan.write_text(text.replace("displayName: Apigee proxy identity,",
                                     "displayName: Apigee proxy identity (renamed),"))
        updated = _events(["apply", str(plan), url], tmp_path)
        rolled_back = _events(["rollback", str(plan), url], tmp_path)
        destroyed = _events(["destroy", str(plan), url, "--yes"], tmp_path)

    _run_of(applied, "apply")
    assert _steps(applied, "step_finished") == steps
    assert any(e["type"] == "step_progress" for e in applied)  # operations were polled
    _run_of(refreshed, "refresh")
    assert _steps(refreshed, "step_finished", "refresh") == steps
    assert all("kind" in e for e in refreshed if e["type"] == "step_finished")
    _run_of(refused, "import", "failed")
    assert [e["step"] for e in refused if e["type"] == "step_failed"] == ["ilb-subnet"]
    _run_of(imported, "import")
    assert _steps(imported, "step_finished", "import") == {"backend-vpc"}
    _run_of(updated, "apply")
    assert _steps(updated, "step_started", "update") == {"invoker"}
    _run_of(rolled_back, "rollback")
    assert _steps(rolled_back, "step_started", "restore") == {"invoker"}
    assert _steps(rolled_back, "step_finished", "restore") == {"invoker"}
    _run_of(destroyed, "destroy")
    # The enabled APIs are left enabled: the project's, not the plan's.
    apis = {s for s in steps if s.startswith(("api-", "backend-api-"))}
    assert len(apis) == 10
    assert _steps(destroyed, "step_finished", "leave") == apis
    assert _steps(destroyed, "step_finished", "delete") == steps - apis
