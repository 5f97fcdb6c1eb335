"""What a Terraform or gcloud user reaches for daily: prompts that say what they did and exit as
documented, destroy listing what it deletes, single outputs for scripts, show as JSON and
unclipped when piped, a graph's format from its file name, error counts, and the emulator
saying how to use it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from provision_emulator import Emulator

from .terminal import HANG, on_a_terminal

PLAN = Path(__file__).parents[2] / "plans" / "network-basics.yaml"


@pytest.fixture
def applied(tmp_path: Path) -> Iterator[tuple[Emulator, Path]]:
    """network-basics applied on an emulator; its ledger."""
    ledger = tmp_path / "basics.json"
    with Emulator() as emu:
        result = CliRunner().invoke(app, ["apply", str(PLAN), "--emulator", emu.url,
                                          "--ledger", str(ledger), "--yes"])
        assert result.exit_code == 0, result.output
        yield emu, ledger


@pytest.mark.parametrize(("answer", "status", "said"), [
    (b"n\r", 1, "Nothing changed."),
    (b"", 130, "interrupted: nothing changed."),
])
def test_destroy_lists_what_it_deletes_and_a_no_or_ctrl_c_changes_nothing(
        applied: tuple[Emulator, Path], tmp_path: Path, answer: bytes, status: int,
        said: str) -> None:
    emu, ledger = applied
    typed: list[bool] = []

    def reply(shown: bytes, proc: subprocess.Popen[bytes]) -> bytes | None:
        if typed or b"[y/N]" not in shown:
            return None
        typed.append(True)
        if not answer:
            proc.send_signal(signal.SIGINT)
        return answer

    code, shown = on_a_terminal(tmp_path, ["destroy", "--ledger", str(ledger), "--emulator",
                                           emu.url], reply)
    assert code == status, shown
    assert said in shown
    # dependents first, as destroy deletes them
    lines = [line for line in shown.splitlines() if line.strip().startswith("- ")]
    listed = [line.split()[1] for line in lines]
    assert sorted(listed) == ["allow-internal", "subnet", "vpc"] and listed[-1] == "vpc"
    assert "compute.network  projects/demo-project/global/networks/demo-vpc" in shown
    assert "Destroy these 3 resources recorded in" in shown
    assert len(json.loads(ledger.read_text())["resources"]) == 3


def test_one_output_raw_for_scripts_and_show_as_json(applied: tuple[Emulator, Path]) -> None:
    _, ledger = applied
    runner = CliRunner()
    raw = runner.invoke(app, ["outputs", "vpc.selfLink", "--ledger", str(ledger), "--raw"])
    assert raw.exit_code == 0, raw.output
    assert raw.output == ("https://www.googleapis.com/compute/v1/projects/demo-project/global/"
                          "networks/demo-vpc\n")
    step = runner.invoke(app, ["outputs", "vpc", "--ledger", str(ledger), "--json"])
    assert json.loads(step.output)["name"] == "demo-vpc"
    missing = runner.invoke(app, ["outputs", "vcp", "--ledger", str(ledger)])
    assert missing.exit_code == 2 and "did you mean vpc?" in missing.output
    field = runner.invoke(app, ["outputs", "vpc.nope", "--ledger", str(ledger)])
    assert field.exit_code == 2 and "has no output 'nope'" in field.output
    shown = runner.invoke(app, ["show", "--ledger", str(ledger), "--json"])
    data = json.loads(shown.output)
    assert sorted(r["step"] for r in data["resources"]) == ["allow-internal", "subnet", "vpc"]
    assert data["runs"][-1]["command"] == "apply" and data["version"]
    # Piped, the table is not cut at 80 columns: every path whole.
    table = runner.invoke(app, ["show", "--ledger", str(ledger)])
    assert "projects/demo-project/global/firewalls/demo-allow-internal" in table.output


def test_graph_takes_its_format_from_the_file_name(applied: tuple[Emulator, Path],
                                                   tmp_path: Path) -> None:
    _, ledger = applied
    out = tmp_path / "basics.dot"
    result = CliRunner().invoke(app, ["graph", str(PLAN), "--ledger", str(ledger), "-o",
                                      str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("digraph")


def test_import_of_nothing_is_invalid_input(applied: tuple[Emulator, Path]) -> None:
    emu, ledger = applied
    other = ledger.with_name("other.json")
    result = CliRunner().invoke(app, [
        "import", str(PLAN), "vpc", "--ledger", str(other), "--emulator", emu.url,
        "--var", "project=nobody-project"])
    assert result.exit_code == 2, result.output
    assert "does not exist: nothing to import" in result.output
    assert not other.exists() or json.loads(other.read_text())["resources"] == {}


def test_validate_counts_its_errors_and_restore_names_force(
        tmp_path: Path, write_plan: Callable[[str], Path]) -> None:
    bad = write_plan("name: bad\nsteps:\n  - {id: a, kind: compute.netwrk, name: x}\n"
                     "  - {id: a, kind: compute.network, name: Y}\n")
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    # an unknown kind, a duplicate id, a missing project, a name Google would refuse
    assert "4 errors: nothing was sent to Google." in result.output
    ledger = tmp_path / "l.json"
    with Emulator() as emu:
        CliRunner().invoke(app, ["apply", str(PLAN), "--emulator", emu.url, "--ledger",
                                 str(ledger), "--yes"])
        CliRunner().invoke(app, ["apply", str(PLAN), "--emulator", emu.url, "--ledger",
                                 str(ledger), "--yes"])
    refused = CliRunner().invoke(app, ["ledger", "restore", "--ledger", str(ledger), "--yes"])
    assert refused.exit_code == 2
    assert "provision ledger restore --force" in refused.output


def test_the_state_directory_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["apply", str(PLAN), "--emulator=embedded", "--yes"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".provision").stat().st_mode & 0o777 == 0o700
    # The run ends with how long it took, where its ledger is and what to run next.
    assert "Took 25.0 s (simulated: Google's durations on the emulator's clock); ledger " \
        ".provision/network-basics.ledger.json." in result.output
    assert f"Next: provision verify {PLAN} --emulator, provision outputs {PLAN}, " \
        f"provision destroy {PLAN} --emulator" in result.output


def test_the_emulator_says_how_to_use_it_and_refuses_a_state_nowhere(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["emulator", "--state",
                                      str(tmp_path / "absent" / "cloud.json")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "emulator", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.terminate()
        proc.wait(timeout=HANG)
    assert "serving on http://127.0.0.1:" in banner[0] and "virtual clock" in banner[0]
    assert "export PROVISION_EMULATOR=http://127.0.0.1:" in banner[1]
    assert "api_endpoint_overrides/compute" in banner[2]


def test_a_rolled_back_apply_says_so_and_counts_what_it_undid(tmp_path: Path) -> None:
    with Emulator() as emu:
        emu.set_faults(operation_failure=1.0, methods=["compute.firewalls.insert"])
        result = CliRunner().invoke(app, ["apply", str(PLAN), "--emulator", emu.url,
                                          "--ledger", str(tmp_path / "l.json"), "--yes",
                                          "--on-failure", "rollback"])
    assert result.exit_code == 1, result.output
    assert "apply failed: 1 step failed; 2 created." in result.output
    assert "Its changes are rolled back (below)" in result.output
    assert "it resumes where this stopped" not in result.output
    # The firewall's create failed in its operation: nothing of it to delete.
    assert "rollback complete: 2 deleted, 1 already absent." in result.output


def test_vars_from_the_environment_under_the_command_line(
        write_plan: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """PROVISION_VAR_name sets a declared var, as Terraform's TF_VAR_name; --var wins; names
    the plan does not declare are ignored; a value of the wrong type is refused by name."""
    plan = write_plan("""name: env
vars: {project: file-project, mtu: 1460}
defaults:
  project: ${vars.project}
steps:
  - id: vpc
    kind: compute.network
    name: env-vpc
    properties:
      autoCreateSubnetworks: false
      mtu: ${vars.mtu}
""")
    monkeypatch.setenv("PROVISION_VAR_project", "env-project")
    monkeypatch.setenv("PROVISION_VAR_undeclared", "another plan's")
    runner = CliRunner()
    roles = runner.invoke(app, ["roles", str(plan)])  # names each project; no API call
    assert roles.exit_code == 0, roles.output
    assert "env-project" in roles.output and "file-project" not in roles.output
    roles = runner.invoke(app, ["roles", str(plan), "--var", "project=flag-project"])
    assert "flag-project" in roles.output and "env-project" not in roles.output
    monkeypatch.setenv("PROVISION_VAR_mtu", "big")
    refused = runner.invoke(app, ["validate", str(plan)])
    assert refused.exit_code == 2
    assert "PROVISION_VAR_mtu: expected an integer" in refused.output


def test_times_on_a_wall_clock_emulator_say_they_include_provisions_own_work(
        tmp_path: Path) -> None:
    """On `provision emulator --time-scale`, the client's own work (loading its libraries, say)
    is scaled up with Google's durations: a DNS record's delete once showed 32 minutes. The
    times say so, and name the virtual clock, which counts Google's durations only."""
    with Emulator(time_scale=0.001) as emu:
        result = CliRunner().invoke(app, ["apply", str(PLAN), "--emulator", emu.url,
                                          "--ledger", str(tmp_path / "l.json"), "--yes"])
    assert result.exit_code == 0, result.output
    assert "(times: simulated, the wall clock x 1000: provision's own work counts x 1000 " \
        "too; the emulator's default virtual clock counts only Google's)" in result.output


def test_restore_asks_as_every_prompt_does(applied: tuple[Emulator, Path],
                                           tmp_path: Path) -> None:
    emu, ledger = applied
    CliRunner().invoke(app, ["apply", str(PLAN), "--emulator", emu.url, "--ledger", str(ledger),
                             "--yes"])  # a second run: the backup is the first's ledger
    before = ledger.read_text()

    def reply(shown: bytes, proc: subprocess.Popen[bytes]) -> bytes | None:
        return b"n\r" if shown.endswith(b"Restore it? [y/N]: ") else None

    code, shown = on_a_terminal(tmp_path, ["ledger", "restore", "--ledger", str(ledger),
                                           "--force"], reply)
    assert code == 1, shown
    assert "restore from" in shown and "Nothing restored." in shown
    assert ledger.read_text() == before
