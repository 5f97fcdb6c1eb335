"""Cloud Run jobs on the emulator (apis/run_jobs.py): a run starts an execution whose tasks
run as processes, with Cloud Run's task variables, at most `parallelism` at once, each retried
up to `maxRetries`; the run's operation ends with the execution."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

PARENT = "projects/jobs-project/locations/europe-west1"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


@pytest.fixture
def jobs(emu: Emulator) -> Any:
    run = discovery.build("run", "v2", credentials=AnonymousCredentials(), static_discovery=True,
                          client_options={"api_endpoint": f"{emu.url}/run/"})
    return run.projects().locations()


def create(jobs: Any, emu: Emulator, job_id: str, script: str, **template: Any) -> str:
    env = {"GREETING": "hello", **template.pop("env", {})}
    body = {"template": {"taskCount": template.pop("tasks", 1),
                         "parallelism": template.pop("parallelism", 0),
                         "template": {"containers": [{
                             "image": "local", "command": ["/bin/sh", "-c"], "args": [script],
                             "env": [{"name": k, "value": v} for k, v in env.items()]}],
                             **template}}}
    op = jobs.jobs().create(parent=PARENT, jobId=job_id, body=body).execute()
    emu.skip(60)
    assert jobs.operations().get(name=op["name"]).execute()["done"]
    return f"{PARENT}/jobs/{job_id}"


def run_to_end(jobs: Any, job: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    op = jobs.jobs().run(name=job, body={}).execute()
    assert not op["done"] and op["metadata"]["name"].startswith(f"{job}/executions/")
    # The long-poll wait: each task process holds the virtual clock from its start, so the
    # wait answers when the execution ends, however long the processes take.
    while not op["done"]:
        op = jobs.operations().wait(name=op["name"], body={}).execute()
    execution = jobs.jobs().executions().get(name=op["response"]["name"]).execute()
    tasks = jobs.jobs().executions().tasks().list(parent=execution["name"]).execute()["tasks"]
    return execution, sorted(tasks, key=lambda t: t["index"])


def clock_task(second: int, prelude: str = "") -> str:
    """A task's command whose process waits on the emulator's virtual clock, as a provision
    task waiting on Google does: 3600 s on its first attempt, `second` on the next."""
    return (f"{sys.executable} -c \"import os, signal; "
            f"from orchestrator.gcp.clock import for_emulator; {prelude}"
            "clock = for_emulator(os.environ['EMULATOR']); print('started', flush=True); "
            f"clock.sleep(3600 if os.environ['CLOUD_RUN_TASK_ATTEMPT'] == '0' else {second}); "
            "print('woke')\"")


def _took(task: dict[str, Any]) -> float:
    """Seconds from the task's (last attempt's) start to its completion."""
    return (datetime.fromisoformat(task["completionTime"])
            - datetime.fromisoformat(task["startTime"])).total_seconds()


def log_of(task: dict[str, Any]) -> str:
    with open(task["logUri"].removeprefix("file://")) as fh:
        return fh.read()


def test_tasks_run_as_processes_with_cloud_runs_variables(jobs: Any, emu: Emulator) -> None:
    job = create(jobs, emu, "hello", 'echo "$GREETING $CLOUD_RUN_JOB $CLOUD_RUN_EXECUTION '
                 '$CLOUD_RUN_TASK_INDEX/$CLOUD_RUN_TASK_COUNT $CLOUD_RUN_TASK_ATTEMPT"', tasks=3)
    got = jobs.jobs().get(name=job).execute()
    assert got["template"]["template"]["maxRetries"] == 3  # Google's defaults
    assert got["template"]["template"]["timeout"] == "600s"
    execution, tasks = run_to_end(jobs, job)
    assert (execution["succeededCount"], execution["failedCount"]) == (3, 0)
    assert execution["conditions"][0]["state"] == "CONDITION_SUCCEEDED"
    short = execution["name"].rsplit("/", 1)[-1]
    assert [log_of(t).strip() for t in tasks] == [
        f"hello hello {short} {i}/3 0" for i in range(3)]
    latest = jobs.jobs().get(name=job).execute()["latestCreatedExecution"]
    assert latest["name"] == short and latest["completionStatus"] == "EXECUTION_SUCCEEDED"


def test_a_failing_task_is_retried_then_fails_the_execution(jobs: Any, emu: Emulator) -> None:
    # Task 1 fails on its first attempt only; task 2 always.
    job = create(jobs, emu, "flaky", 'test "$CLOUD_RUN_TASK_INDEX" = 0 || '
                 '{ test "$CLOUD_RUN_TASK_INDEX" = 1 && test "$CLOUD_RUN_TASK_ATTEMPT" = 1; }',
                 tasks=3, maxRetries=2)
    execution, tasks = run_to_end(jobs, job)
    assert (execution["succeededCount"], execution["failedCount"]) == (2, 1)
    assert execution["retriedCount"] == 1 + 2
    assert execution["conditions"][0]["state"] == "CONDITION_FAILED"
    assert [t["retried"] for t in tasks] == [0, 1, 2]
    assert tasks[2]["lastAttemptResult"]["exitCode"] == 1
    assert tasks[2]["conditions"][0]["state"] == "CONDITION_FAILED"


def test_parallelism_bounds_the_tasks_running_at_once(jobs: Any, emu: Emulator,
                                                      tmp_path: Path) -> None:
    # Each task marks itself running, logs how many are (itself included), marks itself
    # started, and unmarks itself only once two tasks have started. Of the first two, which
    # run together, the one that counts last sees both (the other cannot have left: that
    # needs the later one started); no task sees three. No moment of real time is relied on
    # (a task waits 60 s at most for a second one, so that a broken emulator leaves none).
    running, started = tmp_path / "running", tmp_path / "started"
    running.mkdir()
    started.mkdir()
    script = (f'touch {running}/$CLOUD_RUN_TASK_INDEX; ls {running} | wc -l; '
              f'touch {started}/$CLOUD_RUN_TASK_INDEX; '
              f'i=0; while [ "$(ls {started} | wc -l)" -lt 2 ] && [ $i -lt 1200 ]; '
              'do sleep 0.05; i=$((i+1)); done; '
              f'rm {running}/$CLOUD_RUN_TASK_INDEX')
    job = create(jobs, emu, "two-at-once", script, tasks=4, parallelism=2)
    execution, tasks = run_to_end(jobs, job)
    assert execution["succeededCount"] == 4
    most = max(int(log_of(t).split()[0]) for t in tasks)
    assert most == 2


def test_a_container_without_a_command_fails_its_task_saying_why(jobs: Any, emu: Emulator,
                                                                 ) -> None:
    body = {"template": {"template": {"maxRetries": 0,
                                      "containers": [{"image": "local"}]}}}
    jobs.jobs().create(parent=PARENT, jobId="no-command", body=body).execute()
    emu.skip(60)
    execution, tasks = run_to_end(jobs, f"{PARENT}/jobs/no-command")
    assert execution["failedCount"] == 1
    assert "set one" in log_of(tasks[0])
    with pytest.raises(HttpError) as missing:
        jobs.jobs().run(name=f"{PARENT}/jobs/absent", body={}).execute()
    assert missing.value.status_code == 404
    assert "Resource 'absent' of kind 'JOB' in region 'europe-west1'" in str(missing.value)


def test_an_attempt_outliving_its_timeout_is_stopped_and_retried(jobs: Any, emu: Emulator,
                                                                  ) -> None:
    """Google stops a task attempt at its timeout, a failed attempt that is retried (C92). The task
    waits on the virtual clock, as a provision task waiting on Google does: its first attempt
    sleeps past the 60 s timeout, its second does not."""
    # Run by the shell, not exec'd: the shell's child goes with it, as in a container.
    waits = clock_task(second=30)
    job = create(jobs, emu, "slow", waits, timeout="60s", maxRetries=1,
                 env={"EMULATOR": emu.url})
    execution, (task,) = run_to_end(jobs, job)
    assert execution["succeededCount"] == 1 and execution["retriedCount"] == 1
    assert log_of(task).split() == ["started", "started", "woke"], (log_of(task), task)
    # The first attempt ran its 60 s, the second its 30.
    assert _took(task) == 30

    job = create(jobs, emu, "too-slow", clock_task(second=3600), timeout="60s",
                 maxRetries=0, env={"EMULATOR": emu.url})
    execution, (task,) = run_to_end(jobs, job)
    assert execution["failedCount"] == 1
    assert task["lastAttemptResult"]["status"]["code"] == 4
    assert "exitCode" not in task["lastAttemptResult"]
    assert "exceeded its timeout (60s)" in task["lastAttemptResult"]["status"]["message"]
    assert _took(task) == 60


def test_an_attempt_stopped_at_its_timeout_failed_whatever_it_exits_with(
        jobs: Any, emu: Emulator) -> None:
    """A container that traps SIGTERM and exits 0 was still stopped at its timeout: a failed
    attempt, retried."""
    traps = "exec " + clock_task(
        second=30, prelude="signal.signal(signal.SIGTERM, lambda *a: os._exit(0)); ")
    job = create(jobs, emu, "traps", traps, timeout="60s", maxRetries=1,
                 env={"EMULATOR": emu.url})
    execution, (task,) = run_to_end(jobs, job)
    assert execution["retriedCount"] == 1 and execution["succeededCount"] == 1
    assert log_of(task).split() == ["started", "started", "woke"]
