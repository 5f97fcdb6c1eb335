"""Shell completion, driven the way a shell drives it: click's completion protocol against the
`provision` process, and typer's bash script sourced into a real bash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.plan import load_plan

PLANS = Path(__file__).parents[2] / "plans"


def _complete(words: str, cwd: Path) -> list[str]:
    """What `provision` offers for the last word of `words` (empty after a trailing space)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "_PROVISION_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(cword)}
    done = subprocess.run([sys.executable, "-m", "orchestrator"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout.split()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "plans" / "nested").mkdir(parents=True)
    for name in ("plans/net.yaml", "plans/hub.yml", "plans/notes.txt", "plans/nested/x.yaml",
                 "top.yaml", ".hidden.yaml"):
        (tmp_path / name).write_text("steps: []\n")
    return tmp_path


def test_commands_and_option_values(tree: Path) -> None:
    assert _complete("provision r", tree) == ["roles", "refresh", "rollback"]
    assert _complete("provision graph top.yaml --format ", tree) == ["mermaid", "dot", "svg"]
    assert _complete("provision apply top.yaml --on-failure r", tree) == ["rollback"]
    assert _complete("provision apply top.yaml --var-file pl", tree) == [
        "plans/hub.yml", "plans/nested/", "plans/net.yaml"]
    assert _complete("provision --verbosity d", tree) == ["debug"]


def test_plan_arguments_complete_to_yaml_files_and_directories(tree: Path) -> None:
    assert _complete("provision apply ", tree) == ["plans/", "top.yaml"]
    # A lone directory is opened, so that bash does not close the word after it.
    assert _complete("provision validate pl", tree) == [
        "plans/hub.yml", "plans/nested/", "plans/net.yaml"]
    assert _complete("provision destroy plans/n", tree) == ["plans/nested/", "plans/net.yaml"]
    assert _complete("provision graph plans/ne", tree) == ["plans/nested/", "plans/net.yaml"]
    assert _complete("provision plan .h", tree) == [".hidden.yaml"]
    assert _complete("provision plan missing/", tree) == []


def test_step_completes_to_the_step_ids_of_the_plan_before_it(tmp_path: Path) -> None:
    plan = PLANS / "psc-cloud-run.yaml"
    ids = [step.id for step in load_plan(plan).steps]
    assert _complete(f"provision import {plan} ", tmp_path) == ids
    assert _complete(f"provision import {plan} api-d", tmp_path) == ["api-dns"]
    assert _complete(f"provision import --emulator=embedded {plan} api-d", tmp_path) == [
        "api-dns"]
    # --target's value is completed before click assigns the plan argument: found on the line
    assert _complete(f"provision destroy {plan} --target api-d", tmp_path) == ["api-dns"]
    (tmp_path / "vars.yaml").write_text("steps: [{id: api-decoy}]\n")
    assert _complete(f"provision apply --var-file vars.yaml {plan} --target api-d",
                     tmp_path) == ["api-dns"]
    # A plan that cannot be read offers nothing, and prints no traceback (_complete checks).
    (tmp_path / "broken.yaml").write_text("steps: [\n")
    assert _complete("provision import broken.yaml ", tmp_path) == []
    assert _complete("provision import absent.yaml ", tmp_path) == []


def test_installed_bash_completion_offers_step_ids(tmp_path: Path) -> None:
    # `provision` on PATH as a shell finds it, whether or not the venv's bin is on PATH here.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "provision"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m orchestrator "$@"\n')
    launcher.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    plan = PLANS / "psc-cloud-run.yaml"
    # `; true` keeps bash from exec'ing the command: typer detects the shell from its parent.
    script = f"""
        provision --install-completion; true
        source "$HOME/.bashrc"
        COMP_WORDS=(provision import {plan} api-); COMP_CWORD=3
        _provision_completion provision
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("bash completion installed in ")
    assert (tmp_path / ".bash_completions" / "provision.sh").is_file()
    expected = [s.id for s in load_plan(plan).steps if s.id.startswith("api-")]
    assert lines[2:] == expected, done.stdout
