"""The options commands share, declared once: --var-file with its place among the other sources
of vars, and help that reads as Terraform's and gcloud's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli import app
from provision_emulator import Emulator

from ..engine.test_apply import LONE_TUNNEL

PLAN = """name: spokes
vars:
  project: plan-project
  spokes: [a]
  mtu: 1460
defaults:
  project: ${vars.project}
steps:
  - id: net
    for_each: ${vars.spokes}
    kind: compute.network
    name: net-${each.key}
    properties: {autoCreateSubnetworks: false, mtu: "${vars.mtu}"}
"""


def _roles(*args: str) -> str:
    """The project `roles` names: which value `project` got (no API is called)."""
    result = CliRunner().invoke(app, ["roles", *args, "--json"])
    assert result.exit_code == 0, result.output
    (project,) = json.loads(result.output)
    return project.removeprefix("projects/")


def test_var_files_set_vars_between_the_environment_and_the_command_line(
        tmp_path: Path, write_plan: Callable[[str], Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    plan = write_plan(PLAN)
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text("project: first-project\nspokes: [a, b, c]\nmtu: 1500\n")
    second.write_text("# a later file wins\nproject: second-project\n")
    monkeypatch.setenv("PROVISION_VAR_project", "env-project")
    assert _roles(str(plan)) == "env-project"
    assert _roles(str(plan), "--var-file", str(first)) == "first-project"
    assert _roles(str(plan), "--var-file", str(first), "--var-file", str(second)) \
        == "second-project"
    assert _roles(str(plan), "--var-file", str(second), "--var", "project=flag-project") \
        == "flag-project"
    # A file's values keep their YAML types: a list to repeat over, a number.
    valid = CliRunner().invoke(app, ["validate", str(plan), "--var-file", str(first)])
    assert valid.exit_code == 0, valid.output
    assert "valid (3 steps)" in valid.output


def test_a_var_files_mistakes_are_reported_at_their_lines(
        tmp_path: Path, write_plan: Callable[[str], Path]) -> None:
    plan = write_plan(PLAN)
    bad = tmp_path / "bad.yaml"
    bad.write_text("project: 123\nspoke: [a]\nmtu: ${vars.other}\n")
    result = CliRunner().invoke(app, ["validate", str(plan), "--var-file", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:1:10: project: expected a string (quote it), as the plan's value, got 123" \
        in result.output
    assert f"{bad}:2:1: spoke: the plan declares no var 'spoke' (did you mean spokes?)" \
        in result.output
    assert f"{bad}:3:6: mtu: a var's value cannot refer to anything" in result.output
    assert "3 errors: nothing was sent to Google." in result.output
    listed = tmp_path / "list.yaml"
    listed.write_text("- project\n")
    for file, said in ((listed, f"{listed}:1:1: a var file is a mapping of var names to values"),
                       (tmp_path / "absent.yaml", "cannot read the var file: No such file")):
        result = CliRunner().invoke(app, ["plan", str(plan), "--var-file", str(file),
                                          "--emulator", "http://127.0.0.1:9"])
        assert result.exit_code == 2, result.output
        assert said in result.output


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def test_a_saved_plan_keeps_the_values_its_vars_had(
        tmp_path: Path, write_plan: Callable[[str], Path], emulator: Emulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Terraform's saved plans record the variables' values: so do ours, whether they came from
    a var file or the environment, and the apply does the same in another environment."""
    plan = write_plan(PLAN)
    values = tmp_path / "values.yaml"
    values.write_text("spokes: [a, b]\n")
    saved, ledger = tmp_path / "saved.plan", tmp_path / "l.json"
    monkeypatch.setenv("PROVISION_VAR_project", "env-project")
    planned = CliRunner().invoke(app, ["plan", str(plan), "--var-file", str(values), "-o",
                                       str(saved), "--emulator", emulator.url, "--ledger",
                                       str(ledger)])
    assert planned.exit_code == 0, planned.output
    assert "2 to add" in planned.output
    values.unlink()
    monkeypatch.setenv("PROVISION_VAR_project", "another-project")
    applied = CliRunner().invoke(app, ["apply", str(saved), "--emulator", emulator.url, "--yes"])
    assert applied.exit_code == 0, applied.output
    recorded = json.loads(ledger.read_text())["resources"]
    assert sorted(recorded) == ["net[a]", "net[b]"]
    assert all("projects/env-project/" in r["path"] for r in recorded.values())
    refused = CliRunner().invoke(app, ["apply", str(saved), "--var-file", str(values)])
    assert refused.exit_code == 2
    assert "carries its vars" in refused.output


def _command_paths(group: typer.core.TyperGroup, ctx: typer.Context,
                   path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*path, name)
        if isinstance(command, typer.core.TyperGroup):
            yield from _command_paths(command, ctx, (*path, name))


def test_help_reads_as_terraform_and_gcloud_help_does() -> None:
    """A required argument is PLAN, not {PLAN}; a flag shows no type (`--help`, not
    `--help <bool>`); every command that reads a plan's vars takes --var and --var-file."""
    root = typer.main.get_command(app)
    paths = [(), *_command_paths(root, typer.Context(root, info_name="provision"))]
    assert len(paths) > 25
    helps = {}
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        helps[" ".join(path)] = result.output
    for command, text in helps.items():
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "<bool>" not in text and "{" not in usage, command
        if "--var " in text:
            assert "--var-file" in text, command
    assert "apply [OPTIONS] PLAN " in helps["apply"]
    assert "│ --help   " in helps[""]
    # A command's help is not cut where its docstring's lines end.
    assert "each request path, hop by hop, from live reads" in helps[""]


SECRET = "verbosity-test-secret-7f3a"


@pytest.mark.parametrize("level", ["warning", "info", "debug"])
def test_verbosity_logs_events_retries_and_requests_never_a_secret(
        tmp_path: Path, write_plan: Callable[[str], Path], emulator: Emulator,
        monkeypatch: pytest.MonkeyPatch, level: str) -> None:
    """gcloud's levels: info adds each step's events and each retry, debug each request; Google
    quotes the tunnel's secret back in its refusal, and no level writes it down."""
    monkeypatch.setenv("PROVISION_TEST_TUNNEL_SECRET", SECRET)
    # Google is unavailable at the network's first tries; it refuses the tunnel quoting its
    # secret.
    emulator.set_faults(unavailable=0.9, echo_field="sharedSecret",
                        methods=["compute.networks.insert", "compute.vpnTunnels.insert"])
    result = CliRunner().invoke(app, [
        "--verbosity", level, "apply", str(write_plan(LONE_TUNNEL)), "--emulator", emulator.url,
        "--yes", "--ledger", str(tmp_path / "l.json")])
    assert result.exit_code == 1, result.output
    said = result.output
    assert "Invalid value for field 'resource.sharedSecret'" in said  # the refusal, redacted
    assert SECRET not in said
    events = "INFO provision.engine: step_finished vpc create" in said
    retries = "INFO provision.retry: vpc: HTTP 503 UNAVAILABLE; retry 1 in" in said
    requests = f"DEBUG provision.requests: POST {emulator.url}/compute/compute/v1/projects/" \
        "eng-project/global/networks" in said
    assert (events, retries, requests) == {
        "warning": (False, False, False), "info": (True, True, False),
        "debug": (True, True, True)}[level]
    if level != "warning":
        assert "INFO provision.engine: step_failed tunnel: 400 invalid" in said


def test_verbosity_anywhere_on_the_line_and_a_level_gcloud_does_not_know_refused() -> None:
    from orchestrator.cli import _normalise_argv

    assert _normalise_argv(["apply", "p.yaml", "--verbosity", "info"]) == \
        ["--verbosity", "info", "apply", "p.yaml"]
    assert _normalise_argv(["destroy", "--verbosity=debug"]) == ["--verbosity=debug", "destroy"]
    result = CliRunner().invoke(app, ["--verbosity", "loud", "schema"])
    assert result.exit_code == 2
    assert "--verbosity 'loud': expected one of debug, info, warning, error, critical, none" \
        in result.output


def test_a_var_file_is_read_once_so_a_pipe_will_do(
        tmp_path: Path, write_plan: Callable[[str], Path]) -> None:
    """`--var-file <(vault read ...)`: graph reads the plan for its drawing and for its ledger's
    place; a second read of a pipe would wait for a writer that is gone."""
    plan = write_plan(PLAN)
    pipe = tmp_path / "vars.pipe"
    os.mkfifo(pipe)

    def write() -> None:
        with open(pipe, "w") as fh:
            fh.write("project: piped-project\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result = subprocess.run([sys.executable, "-m", "orchestrator", "graph", str(plan),
                             "--var-file", str(pipe)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "piped-project" in result.stdout


def test_an_empty_var_file_sets_nothing_and_a_second_document_is_refused(
        tmp_path: Path, write_plan: Callable[[str], Path]) -> None:
    plan = write_plan(PLAN)
    empty, two = tmp_path / "empty.yaml", tmp_path / "two.yaml"
    empty.write_text("# nothing set here yet\n")
    two.write_text("project: a\n---\nproject: b\n")
    assert _roles(str(plan), "--var-file", str(empty)) == "plan-project"
    result = CliRunner().invoke(app, ["validate", str(plan), "--var-file", str(two)])
    assert result.exit_code == 2
    assert f"{two}:2:1: the var file must be a single YAML document" in result.output


def test_the_python_api_takes_var_files_under_vars(
        tmp_path: Path, write_plan: Callable[[str], Path]) -> None:
    import orchestrator

    values = tmp_path / "values.yaml"
    values.write_text("project: file-project\nspokes: [a, b]\n")
    with orchestrator.load(write_plan(PLAN), var_files=[values], vars={"project": "api-project"},
                           emulator="embedded", state_dir=tmp_path) as dep:
        assert (dep.plan.vars["project"], dep.plan.vars["spokes"]) == ("api-project", ["a", "b"])
        assert [s.id for s in dep.plan.steps] == ["net[a]", "net[b]"]
