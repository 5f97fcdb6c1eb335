"""The `provision` CLI, through typer's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import _normalise_argv, app
from orchestrator.ledger import LocalStore
from provision_emulator import Emulator

from ..engine.conftest import BASICS

runner = CliRunner()


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def _provision(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    env = kwargs.pop("env", None) or _env(cwd)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120, **kwargs,
    )


# case -> (plan text, text on the line the diagnostic must name)
BAD_PLANS = {
    "yaml syntax": ("steps: [\n  - id: a\n", None),
    "unknown kind": (BASICS.replace("compute.firewall", "compute.firewal"), "compute.firewal"),
    "misspelled property": (BASICS.replace("ipCidrRange:", "ipCidrRnage:"), "ipCidrRnage"),
    "wrong type": (BASICS.replace("autoCreateSubnetworks: false", "autoCreateSubnetworks: 'no'"),
                   "autoCreateSubnetworks"),
    "forward reference": (BASICS.replace("${vpc.selfLink}\n      ipCidrRange",
                                         "${fw.selfLink}\n      ipCidrRange"), "${fw.selfLink}"),
    "duplicate id": (BASICS.replace("id: fw", "id: subnet"), "id: subnet\n    kind: compute.f"),
    "bad name": (BASICS.replace("name: eng-vpc", "name: Eng_VPC"), "Eng_VPC"),
}


def _line_of(text: str, marker: str | None) -> str:
    if marker is None:
        return ""
    return str(text[: text.index(marker)].count("\n") + 1) + ":"


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plan_exits_2_with_file_and_line_and_sends_nothing(
    case: str, emulator: Emulator, write_plan
) -> None:
    text, marker = BAD_PLANS[case]
    line = _line_of(text, marker)
    path = write_plan(text)
    for command in (["validate"], ["plan", f"--emulator={emulator.url}"],
                    ["apply", f"--emulator={emulator.url}", "--yes"]):
        result = runner.invoke(app, [command[0], str(path), *command[1:]])
        assert result.exit_code == 2, (case, command, result.output)
        assert f"{path}:{line}" in result.output, (case, result.output)
        assert "Traceback" not in result.output
    assert emulator.requests() == []


def test_unknown_var_override_exits_2(write_plan) -> None:
    result = runner.invoke(app, ["validate", str(write_plan(BASICS)), "--var", "regoin=x"])
    assert result.exit_code == 2
    assert "regoin" in result.output


def test_validate_and_schema() -> None:
    result = runner.invoke(app, ["validate", "plans/network-basics.yaml"])
    assert result.exit_code == 0, result.output
    schema = json.loads(runner.invoke(app, ["schema"]).output)
    assert "compute.network" in json.dumps(schema)


def test_bare_emulator_flag_means_embedded() -> None:
    assert _normalise_argv(["apply", "p.yaml", "--emulator"]) == [
        "apply", "p.yaml", "--emulator=embedded"]
    assert _normalise_argv(["apply", "--emulator", "p.yaml"])[1] == "--emulator=embedded"
    assert _normalise_argv(["apply", "--emulator", "http://h:1"]) == [
        "apply", "--emulator", "http://h:1"]


def test_apply_plan_destroy_as_subprocesses(emulator: Emulator, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    url = f"--emulator={emulator.url}"
    applied = _provision(["apply", str(plan), url, "--yes"], tmp_path)
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert "3 to add" in applied.stdout and "apply complete" in applied.stdout
    assert "eng-subnet" in applied.stdout  # outputs printed
    planned = _provision(["plan", str(plan), url, "--detailed-exitcode"], tmp_path)
    assert planned.returncode == 0, planned.stdout
    assert "No changes" in planned.stdout
    outputs = _provision(["outputs", str(plan), "--json"], tmp_path)
    assert json.loads(outputs.stdout)["vpc"]["name"] == "eng-vpc"
    # From the ledger alone: no plan given.
    destroyed = _provision(["destroy", url, "--yes"], tmp_path)
    assert destroyed.returncode == 0, destroyed.stderr + destroyed.stdout
    assert emulator.dump()["resources"] == {} or not any(
        r for r in emulator.dump()["resources"].values()
    )


def test_json_events_are_versioned_lines(emulator: Emulator, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    done = _provision(["apply", str(plan), f"--emulator={emulator.url}", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert {e["version"] for e in events} == {"1.3"}
    assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_finished"
    finished = {e["step"] for e in events if e["type"] == "step_finished"}
    assert finished == {"vpc", "subnet", "fw"}


def test_second_concurrent_apply_is_refused_and_nothing_is_corrupted(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    with Emulator() as emu:
        url = f"--emulator={emu.url}"
        # The test holds the emulator's clock still, as a participant at work would: the first
        # apply takes the ledger's lock and then waits on its operations, which cannot end,
        # until the second apply and the plan have been refused.
        holder = emu.clock.session()
        emu.clock.hold(holder)
        first = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "apply", str(plan), url, "--json"],
            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        assert first.stdout is not None
        started = json.loads(first.stdout.readline())
        assert started["type"] == "run_started"
        second = _provision(["apply", str(plan), url, "--yes"], tmp_path)
        # A plan now would show the first apply's steps in flight as changes still to make.
        planned = _provision(["plan", str(plan), url], tmp_path)
        emu.clock.release(holder)
        rest, errors = first.communicate(timeout=120)
    for refused in (second, planned):
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"pid {first.pid}" in refused.stderr
    assert first.returncode == 0, errors
    ledger = LocalStore(tmp_path / ".provision" / "basics.ledger.json").load()
    assert set(ledger.resources) == {"vpc", "subnet", "fw"}
    assert [r.result for r in ledger.runs] == ["succeeded"]
