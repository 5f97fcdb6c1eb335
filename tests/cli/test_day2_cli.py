"""Day-2 commands as a user types them: plan --json, ledger mv and rm, refresh then show, and a
ledger given for the wrong plan."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from orchestrator.engine.events import SCHEMA_VERSION
from provision_emulator import Emulator

from ..engine.conftest import BASICS
from ..engine.test_day2 import WITH_ADDRESS
from .test_cli import _provision
from .test_events_schema import _schema


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_plan_json_is_versioned_events_with_old_and_new_values(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(WITH_ADDRESS)
    url = f"--emulator={emulator.url}"
    assert _provision(["apply", str(plan), url, "--yes"], tmp_path).returncode == 0
    plan.write_text(WITH_ADDRESS.replace("range: 10.10.0.0/24", "range: 10.30.0.0/24"))
    done = _provision(["plan", str(plan), url, "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stdout)
    validator = jsonschema.Draft202012Validator(_schema())
    for line in lines:
        assert not list(validator.iter_errors(line)), line
    assert {line["version"] for line in lines} == {SCHEMA_VERSION}
    planned = {line["step"]: line for line in lines if line["type"] == "step_planned"}
    assert set(planned) == {"vpc", "subnet", "fw", "address", "record-zone", "record"}
    subnet = planned["subnet"]
    assert subnet["action"] == "replace"
    assert subnet["data"]["changes"] == [
        {"field": "ipCidrRange", "old": "10.10.0.0/24", "new": "10.30.0.0/24"}]
    assert planned["address"]["data"]["because"] == "subnet"
    assert planned["record"]["data"]["changes"][0]["new"] == "(known after apply)"
    assert planned["record"]["data"]["settled"] is False
    finished = lines[-1]
    assert finished["type"] == "plan_finished"
    assert finished["data"]["counts"]["replace"] == 2
    assert finished["data"]["counts"]["noop"] == 3


def test_ledger_mv_rm_refresh_show_and_another_plans_ledger(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    url = f"--emulator={emulator.url}"
    assert _provision(["apply", str(plan), url, "--yes"], tmp_path).returncode == 0

    renamed = BASICS.replace("id: subnet", "id: subnet-a")
    plan.write_text(renamed)
    refused = _provision(["plan", str(plan), url], tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "provision ledger mv subnet subnet-a" in refused.stderr
    moved = _provision(["ledger", "mv", "subnet", "subnet-a", str(plan), url], tmp_path)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "1 moved to another step" in moved.stdout
    assert "No changes" in _provision(["plan", str(plan), url], tmp_path).stdout

    missing = _provision(["ledger", "rm", "fww", str(plan), url], tmp_path)
    assert missing.returncode == 2 and "did you mean fw" in missing.stderr

    options = {"credentials": AnonymousCredentials(),
               "client_options": ClientOptions(api_endpoint=f"{emulator.url}/compute")}
    op = compute_v1.FirewallsClient(**options).delete(
        project="eng-project", firewall="eng-allow-internal")
    compute_v1.GlobalOperationsClient(**options).wait(project="eng-project", operation=op.name)
    refreshed = _provision(["refresh", str(plan), url], tmp_path)
    assert "fw: deleted outside provision" in refreshed.stdout
    shown = _provision(["show", str(plan)], tmp_path)
    rows = [line.replace("│", " ").split() for line in shown.stdout.splitlines()]
    assert [row[2] for row in rows if row[:1] == ["fw"]] == ["gone"]
    forgotten = _provision(["ledger", "rm", "fw", str(plan), url], tmp_path)
    assert forgotten.returncode == 0 and "1 forgotten" in forgotten.stdout

    other = tmp_path / "other.yaml"
    other.write_text(renamed.replace("name: basics", "name: other"))
    ledger = tmp_path / ".provision" / "basics.ledger.json"
    wrong = _provision(["apply", str(other), url, "--yes", "--ledger", str(ledger)], tmp_path)
    assert wrong.returncode == 2
    assert "made for plan 'basics', not 'other'" in wrong.stderr


def test_a_saved_plan_applies_exactly_once_and_refuses_when_stale(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    url = f"--emulator={emulator.url}"
    saved = tmp_path / "saved.json"
    made = _provision(["plan", str(plan), url, "-o", str(saved)], tmp_path)
    assert made.returncode == 0, made.stderr
    assert "3 to add" in made.stdout and f"Saved to {saved}" in made.stdout
    first = _provision(["apply", str(saved), url], tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "apply complete: 3 created" in first.stdout
    before = len(emulator.requests())
    again = _provision(["apply", str(saved), url], tmp_path)
    assert again.returncode == 2
    assert "made from the ledger at serial 0" in again.stderr
    assert [r for r in emulator.requests()[before:] if r["mutating"]] == []

    # A plan file edited after saving is refused before anything is read.
    plan.write_text(BASICS.replace("10.10.0.0/24", "10.11.0.0/24"))
    assert _provision(["plan", str(plan), url, "-o", str(saved)], tmp_path).returncode == 0
    plan.write_text(BASICS)
    edited = _provision(["apply", str(saved), url], tmp_path)
    assert edited.returncode == 2 and "changed since this plan was saved" in edited.stderr
    mixed = _provision(["apply", str(saved), url, "--var", "range=10.0.0.0/24"], tmp_path)
    assert mixed.returncode == 2 and "carries its vars" in mixed.stderr
