"""A fleet as a Cloud Run job: rendered, then launched on the emulator's Cloud Run Admin API,
whose tasks run as processes of this machine (`provision fleet apply --shard I/N` each), as
Cloud Run would run the container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from provision_emulator import Emulator

PLANS = Path(__file__).parents[2] / "plans"
PROVISION = str(Path(sys.executable).with_name("provision"))
FLEET = f"""name: demo
plan: {PLANS / 'network-basics.yaml'}
instances:
  - {{name: t1, vars: {{project: t1-project}}}}
  - {{name: t2, vars: {{project: t2-project}}}}
  - {{name: t3, vars: {{project: t3-project}}, wave: 2}}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fleet file in the current directory (the tasks run in the emulator's), and
    `provision` on the PATH the tasks inherit, as it is in the image."""
    (tmp_path / "fleet.yaml").write_text(FLEET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(PROVISION).parent}{os.pathsep}{os.environ['PATH']}")
    yield tmp_path


def launch(emu: Emulator, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROVISION, "fleet", "launch", "fleet.yaml", "--image", "provision:local",
         "--project", "runner-project", "--region", "europe-west1", "--emulator", emu.url,
         *extra], capture_output=True, text=True, timeout=600)


def test_render_writes_the_job_every_task_runs_its_shard_of(workdir: Path) -> None:
    result = CliRunner().invoke(app, [
        "fleet", "render", "fleet.yaml", "--target", "cloud-run-job", "--image", "img:1",
        "--service-account", "runner@p.iam.gserviceaccount.com", "--retries", "1",
        "--env", "A=b", "-o", "job.json"])
    assert result.exit_code == 0, result.output
    job = json.loads((workdir / "job.json").read_text())
    template = job["template"]
    assert template["taskCount"] == template["parallelism"] == 3  # one per instance
    task = template["template"]
    assert task["maxRetries"] == 1
    assert task["serviceAccount"] == "runner@p.iam.gserviceaccount.com"
    container = task["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    assert container["args"] == ['exec provision fleet apply fleet.yaml --shard '
                                 '"$CLOUD_RUN_TASK_INDEX/$CLOUD_RUN_TASK_COUNT" --yes']
    assert container["env"] == [{"name": "A", "value": "b"}]
    refused = CliRunner().invoke(app, ["fleet", "launch", "fleet.yaml", "--image", "img:1",
                                       "--project", "p", "--region", "europe-west1"])
    assert refused.exit_code == 2
    assert "Cloud Run tasks cannot see" in refused.output


def test_launch_runs_the_shards_as_tasks_and_they_keep_the_waves(workdir: Path) -> None:
    with Emulator(start=1_800_000_000) as emu:
        result = launch(emu, "--tasks", "2")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "job projects/runner-project/locations/europe-west1/jobs/provision-demo created" \
            in result.stdout
        assert "task 0: succeeded" in result.stdout and "task 1: succeeded" in result.stdout
        ops = emu.dump()["operations"]

        def span(project: str) -> tuple[float, float]:
            mine = [o for o in ops if o["target"].startswith(f"projects/{project}/")]
            assert len(mine) == 3
            return min(o["start"] for o in mine), max(o["end"] for o in mine)

        # t3 (wave 2, task 0's) started once t2 (wave 1, task 1's) had finished.
        assert span("t3-project")[0] >= span("t2-project")[1]
        again = launch(emu, "--tasks", "2")  # the job exists: updated, and a no-op run
        assert again.returncode == 0, again.stdout + again.stderr
        assert "provision-demo updated" in again.stdout
        assert len(emu.dump()["operations"]) > len(ops)  # the job's patch and run
        assert not [o for o in emu.dump()["operations"][len(ops):]
                    if o["target"].startswith("projects/t")]
    status = CliRunner().invoke(app, ["fleet", "status", "fleet.yaml"])
    assert status.exit_code == 0
    assert status.output.count("applied") == 3


@pytest.mark.slow
def test_a_failing_task_is_retried_and_fails_the_execution(workdir: Path) -> None:
    # Two instances claim one project: one fails, its task is retried and fails again.
    (workdir / "fleet.yaml").write_text(FLEET.replace("t2-project", "t1-project"))
    with Emulator(start=1_800_000_000) as emu:
        result = launch(emu, "--tasks", "3", "--retries", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    # Whichever of the two loses the race for the project's network fails, and the wave after
    # is not started: both tasks end non-zero after their retry.
    assert result.stdout.count(": failed (exit 1, 1 retries)") == 2, result.stdout
    assert "task 2: failed" in result.stdout
    assert result.stdout.count(": succeeded (exit 0, 0 retries)") == 1, result.stdout
    assert "failed in" in result.stdout


def test_a_task_stopped_at_its_timeout_resumes_at_the_next_launch(workdir: Path) -> None:
    """Cloud Run stops a task attempt at its timeout: mid-apply here (wave 1's instances take
    25 simulated seconds). The ledgers record what was under way, and the next launch, given
    the time, finishes the fleet without making anything twice."""
    with Emulator(start=1_800_000_000) as emu:
        stopped = launch(emu, "--tasks", "1", "--timeout", "20s", "--retries", "0")
        assert stopped.returncode == 1, stopped.stdout + stopped.stderr
        assert "task 0: failed (The task attempt exceeded its timeout (20s) and was stopped., " \
            "0 retries)" in stopped.stdout
        begun = [o for o in emu.dump()["operations"] if o["target"].startswith("projects/t")]
        assert 0 < len(begun) < 9  # stopped halfway
        finished = launch(emu, "--tasks", "1", "--timeout", "600s")
        assert finished.returncode == 0, finished.stdout + finished.stderr
        inserts = [o["target"] for o in emu.dump()["operations"]
                   if o["target"].startswith("projects/t") and o.get("verb") == "insert"]
    assert len(inserts) == len(set(inserts)) == 9, inserts
    status = CliRunner().invoke(app, ["fleet", "status", "fleet.yaml"])
    assert status.output.count("applied") == 3, status.output
