"""Cloud Run Admin API v2: jobs, and their executions and tasks, which run as local processes.

A job is created, read, patched and deleted as a service is (long-running operations whose
metadata is the resource). `jobs.run` starts an execution at once and answers an operation that
ends when the execution does, as Google's does. Each task runs the job's container as a process
of this machine: its `command` and `args` (the image is not pulled: the machine's own programs
stand in for it), with the container's `env` and the variables Cloud Run sets for a job's tasks,
CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT and
CLOUD_RUN_TASK_COUNT (https://cloud.google.com/run/docs/container-contract#jobs-env-vars).
At most `parallelism` tasks run at once (0 or unset: all, "the maximum possible value"); a task
whose process exits non-zero is run again up to `maxRetries` times (default 3), and the
execution fails if one still fails (the defaults and their wording are the discovery
document's: GoogleCloudRunV2TaskTemplate, GoogleCloudRunV2ExecutionTemplate). Each attempt's
output is kept in a file named by the task's `logUri`.

On the virtual clock each task process is a participant: the emulator opens a clock session for
it holding one token, which the process's first clock takes over (PROVISION_CLOCK_SESSION), and
drops it once the process has ended and the task's result is recorded. Simulated time therefore
stands still while a task works and moves only while every participant waits.

A task attempt that outlives its `timeout` (default 600s) is stopped, as Google's "If the task
attempt does not complete within this time, it will be stopped" says
(https://cloud.google.com/run/docs/configuring/task-timeout): SIGTERM, then SIGKILL after the
10 seconds (here of the wall clock) the container contract gives (https://cloud.google.com/run/docs/container-contract
#lifecycle); it is a failed attempt, retried as any other. On the virtual clock the timeout is
simulated time, which a process moves only while it waits (a provision task waiting on Google's
operations), so a process that computes, or sleeps on the wall clock, never reaches it. The
attempt's result (status DEADLINE_EXCEEDED, no exit code) is the emulator's wording.

Not modelled: the image, volumes, VPC access.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from provision_emulator import errors, formats
from provision_emulator.call import Call
from provision_emulator.clock import VirtualClock
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.apis.run import RunRules
    from provision_emulator.cloud import Cloud

JOBS = "projects.locations.jobs"
EXECUTIONS = "projects.locations.jobs.executions"
TASKS = "projects.locations.jobs.executions.tasks"
JOB_SCHEMA = "GoogleCloudRunV2Job"
EXECUTION_SCHEMA = "GoogleCloudRunV2Execution"
MAX_RETRIES = 3
TIMEOUT = "600s"
# An execution's operation ends when its last task does, not after a duration.
UNTIL_DONE = 10 * 365 * 86400.0
INHERITED_SESSION = "PROVISION_CLOCK_SESSION"  # read by orchestrator/gcp/clock.py
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL: the container contract's
SUCCEEDED, FAILED = "CONDITION_SUCCEEDED", "CONDITION_FAILED"


def register(rules: RunRules, creator: str, default_account: Callable[[Cloud, str], str]) -> None:
    @rules.on_create(JOBS)
    def _create_job(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
        _check_job(body)
        project = body["name"].split("/")[1]
        execution = body["template"]
        execution.setdefault("taskCount", 1)
        task = execution["template"]
        task.setdefault("maxRetries", MAX_RETRIES)
        task.setdefault("timeout", TIMEOUT)
        task.setdefault("serviceAccount", default_account(cloud, project))
        body.setdefault("launchStage", "GA")
        body["creator"] = creator
        body["executionCount"] = 0
        _generation(body, call, 1)

    @rules.on_update(JOBS)
    def _update_job(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
        _check_job(body)
        body["executionCount"] = res.body.get("executionCount", 0)
        if "latestCreatedExecution" in res.body:
            body["latestCreatedExecution"] = res.body["latestCreatedExecution"]
        _generation(body, call, int(res.body.get("generation", "1")) + 1)

    @rules.handler("run.projects.locations.jobs.run")
    def _run_job(cloud: Cloud, call: Call) -> dict[str, Any]:
        job = cloud.store.get("run", call.path)
        if job is None:
            raise rules.not_found(call.path)
        execution = _execution(cloud, call, job, (call.body or {}).get("overrides") or {})
        op = cloud.start_operation(call, target=execution.path, collection=EXECUTIONS,
                                   effect="run.execution", verb="run", duration=UNTIL_DONE,
                                   response_schema=EXECUTION_SCHEMA)
        _Tasks(cloud, asyncio.get_running_loop(), execution.path, op).thread.start()
        return rules.render_operation(cloud, op, call.int_enums)

    @rules.effect("run.execution")
    def _finished(cloud: Cloud, op: Any) -> dict[str, Any]:
        found = cloud.store.get("run", op.target)
        return found.body if found else {}


def _check_job(body: dict[str, Any]) -> None:
    containers = (((body.get("template") or {}).get("template") or {}).get("containers")) or []
    if not containers:
        raise errors.invalid("job.template.template.containers: at least one container is "
                             "required.")
    for i, container in enumerate(containers):
        if not container.get("image"):
            raise errors.invalid(f"job.template.template.containers[{i}].image: Required.")


def _generation(body: dict[str, Any], call: Call, generation: int) -> None:
    stamp = formats.rfc3339(call.now)
    body["generation"] = body["observedGeneration"] = str(generation)
    body["terminalCondition"] = {"type": "Ready", "state": SUCCEEDED,
                                 "lastTransitionTime": stamp}
    body["reconciling"] = False


def _execution(cloud: Cloud, call: Call, job: Resource, overrides: dict[str, Any]) -> Resource:
    """The execution and its tasks, stored at once (Google lists them while they run)."""
    count = int(job.body.get("executionCount", 0)) + 1
    name = job.path.rsplit("/", 1)[-1]
    suffix = formats.digest("execution", job.path, count).hex()
    letters = "".join("abcdefghijklmnopqrstuvwxyz"[int(c, 16) % 26] for c in suffix[:5])
    path = f"{job.path}/executions/{name}-{letters}"
    template = dict(job.body["template"])
    task = {**template["template"]}
    if overrides.get("taskCount"):
        template["taskCount"] = int(overrides["taskCount"])
    container_overrides = overrides.get("containerOverrides") or []
    if container_overrides:
        task["containers"] = _overridden(task["containers"], container_overrides)
    stamp = formats.rfc3339(call.now)
    tasks = int(template.get("taskCount", 1))
    parallelism = int(template.get("parallelism") or 0) or tasks
    logs = tempfile.mkdtemp(prefix="run-execution-")
    body = {
        "name": path, "uid": formats.uuid("execution", path), "job": name,
        "generation": "1", "observedGeneration": "1", "creator": job.body.get("creator", ""),
        "createTime": stamp, "startTime": stamp, "launchStage": "GA",
        "taskCount": tasks, "parallelism": parallelism, "template": task,
        "runningCount": 0, "succeededCount": 0, "failedCount": 0, "retriedCount": 0,
        "cancelledCount": 0, "reconciling": True, "logUri": f"file://{logs}",
        "conditions": [{"type": "Completed", "state": "CONDITION_PENDING",
                        "lastTransitionTime": stamp}],
    }
    execution = Resource("run", path, EXECUTIONS, body, call.now, ())
    cloud.put(execution)
    for index in range(tasks):
        task_path = f"{path}/tasks/{name}-{letters}-task{index}"
        cloud.put(Resource("run", task_path, TASKS, {
            "name": task_path, "uid": formats.uuid("task", task_path), "job": name,
            "execution": path.rsplit("/", 1)[-1], "index": index, "retried": 0,
            "containers": task["containers"], "maxRetries": task.get("maxRetries"),
            "timeout": task.get("timeout"), "serviceAccount": task.get("serviceAccount"),
            "createTime": stamp, "logUri": f"file://{logs}/task{index}.log",
            "conditions": [{"type": "Completed", "state": "CONDITION_PENDING"}],
        }, call.now, ()))
    updated = dict(job.body, executionCount=count, latestCreatedExecution={
        "name": path.rsplit("/", 1)[-1], "createTime": stamp,
        "completionStatus": "EXECUTION_RUNNING"})
    cloud.put(Resource("run", job.path, job.collection, updated, job.created, job.refs))
    return execution


def _overridden(containers: list[dict[str, Any]], overrides: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    out = [dict(c) for c in containers]
    for override in overrides:
        target = next((c for c in out if c.get("name") == override.get("name")), out[0])
        if "args" in override:
            target["args"] = override["args"]
        if override.get("env"):
            names = {e["name"] for e in override["env"]}
            target["env"] = [e for e in target.get("env", []) if e["name"] not in names] + [
                *override["env"]]
    return out


class _Tasks:
    """Runs an execution's tasks as processes, `parallelism` at a time, retrying failed ones;
    the cloud is changed on the server's loop only."""

    def __init__(self, cloud: Cloud, loop: asyncio.AbstractEventLoop, path: str, op: Any) -> None:
        self.thread = threading.Thread(target=self.run, name=f"run {path}", daemon=True)
        self.cloud = cloud
        self.loop = loop
        self.path = path
        self.op = op
        self.clock = cloud.clock if isinstance(cloud.clock, VirtualClock) else None
        execution = cloud.store.get("run", path)
        assert execution is not None
        self.body = execution.body
        self.tasks = sorted(cloud.store.children("run", f"{path}/tasks"),
                            key=lambda r: r.body["index"])
        # A session per running task, opened before the handler answers: from the run's
        # request on, the clock waits for the task processes.
        self.sessions: dict[int, str] = {}
        self.queue = list(range(len(self.tasks)))
        self.running: dict[int, tuple[subprocess.Popen[bytes], int]] = {}
        # (index, attempt) stopped at its timeout -> the clock session holding the clock at
        # its deadline until its end is recorded (None on the wall clock)
        self.timed_out: dict[tuple[int, int], str | None] = {}
        self._ended: dict[tuple[int, int], threading.Event] = {}
        # An attempt ends (its process exited) or times out, never both: decided under it.
        self._ending = threading.Lock()
        for _ in range(min(self.body["parallelism"], len(self.queue))):
            index = self.queue.pop(0)
            self._hold(index)
            self._start(index, 0)
            self._task_started(index, 0)  # on the loop already: the run's handler

    def _hold(self, index: int) -> None:
        if self.clock is not None:
            self.sessions[index] = session = self.clock.session("task-")
            self.clock.hold(session)

    def _start(self, index: int, attempt: int) -> None:
        task = self.tasks[index].body
        container = task["containers"][0]
        env = {**os.environ, **{e["name"]: str(e.get("value", ""))
                                for e in container.get("env", []) if "name" in e}}
        job_name = self.path.split("/")[5]
        env.update(CLOUD_RUN_JOB=job_name, CLOUD_RUN_EXECUTION=self.path.rsplit("/", 1)[-1],
                   CLOUD_RUN_TASK_INDEX=str(index), CLOUD_RUN_TASK_ATTEMPT=str(attempt),
                   CLOUD_RUN_TASK_COUNT=str(len(self.tasks)))
        env.pop(INHERITED_SESSION, None)
        if index in self.sessions:
            env[INHERITED_SESSION] = self.sessions[index]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        log = open(task["logUri"].removeprefix("file://"), "ab")  # noqa: SIM115 - the child's
        try:
            if not container.get("command"):
                raise OSError("the emulator runs a container's `command` (it cannot read an "
                              "image's ENTRYPOINT): set one")
            # A group of its own: the container's, whose processes all go when it ends.
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=container.get("workingDir") or None,
                                    start_new_session=True)
        except OSError as exc:
            log.write(f"{exc}\n".encode())
            proc = subprocess.Popen(["false"])  # an attempt that fails, as a bad image does
        finally:
            log.close()
        self.running[index] = (proc, attempt)
        limit = formats.seconds(task.get("timeout") or TIMEOUT, 0.0)
        threading.Thread(target=self._stop_at_timeout, args=(index, attempt, proc, limit),
                         name=f"timeout {self.path} task {index}", daemon=True).start()

    def _stop_at_timeout(self, index: int, attempt: int, proc: subprocess.Popen[bytes],
                         limit: float) -> None:
        """Stop the attempt once `limit` seconds of the cloud's time have passed, unless it
        ends first. On the virtual clock the wait holds a session's token once due, so that
        the clock stands at the deadline until the process is told to stop."""
        ended = self._ended.setdefault((index, attempt), threading.Event())
        name = f"timeout {self.path}/{index}/{attempt}"
        session = None
        if self.clock is not None:
            session = self.clock.session("timeout-")
            self.clock.hold(session)
            self.clock.sleep_until(self.clock.now() + limit, session=session, name=name)
        else:
            ended.wait(self.cloud.clock.scaled(limit))
        with self._ending:
            stopping = not ended.is_set() and proc.poll() is None
            if stopping:
                # The session's token stays held until `run` has recorded the attempt's end:
                # the attempt ends at its deadline, its processes seeing nothing after it.
                self.timed_out[(index, attempt)] = session
        if not stopping:
            if session is not None and self.clock is not None:
                self.clock.drop(session)
            return
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE)
        _end_container(proc)

    def _attempt_ended(self, index: int, attempt: int) -> tuple[bool, str | None]:
        """The attempt's timeout need not wait any longer. Whether it was stopped at its
        timeout, and the session then holding the clock at its deadline."""
        with self._ending:
            self._ended.setdefault((index, attempt), threading.Event()).set()
            stopped = (index, attempt) in self.timed_out
            held = self.timed_out.get((index, attempt))
        if self.clock is not None and not stopped:
            self.clock.wake(f"timeout {self.path}/{index}/{attempt}")
        return stopped, held

    def run(self) -> None:
        while self.running:
            ended = self._next_exit()
            for index, (proc, attempt) in ended:
                del self.running[index]
                _end_container(proc)
                stopped, held = self._attempt_ended(index, attempt)
                # Stopped at its timeout, an attempt has failed, whatever its process returned.
                code = None if stopped else proc.returncode
                retry = code != 0 and attempt < int(self.tasks[index].body.get(
                    "maxRetries") or 0)
                self._on_loop(lambda i=index, a=attempt, c=code, r=retry:
                              self._task_ended(i, a, c, r))
                ended_session = self.sessions.pop(index, None)
                # What runs next holds its token before the ended process's session goes.
                nxt, attempt_next = ((index, attempt + 1) if retry else
                                     (self.queue.pop(0), 0) if self.queue else (None, 0))
                if nxt is not None:
                    self._hold(nxt)
                    self._start(nxt, attempt_next)
                    self._on_loop(lambda i=nxt, a=attempt_next: self._task_started(i, a))
                for gone in (ended_session, held):
                    if gone is not None and self.clock is not None:
                        self.clock.drop(gone)
        self._on_loop(self._completed)

    def _next_exit(self) -> list[tuple[int, tuple[subprocess.Popen[bytes], int]]]:
        while True:
            ended = [(i, run) for i, run in self.running.items() if run[0].poll() is not None]
            if ended:
                return ended
            threading.Event().wait(0.02)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the server's loop and wait for it: the cloud's state is the loop's."""
        done: Future[None] = Future()

        def call() -> None:
            try:
                fn()
                done.set_result(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        done.result()

    def _put(self, res: Resource, body: dict[str, Any]) -> None:
        self.cloud.put(Resource(res.api, res.path, res.collection, body, res.created, res.refs))

    def _execution(self) -> tuple[Resource, dict[str, Any]]:
        res = self.cloud.store.get("run", self.path)
        assert res is not None
        return res, dict(res.body)

    def _task_started(self, index: int, attempt: int) -> None:
        task = self.cloud.store.get("run", self.tasks[index].path)
        assert task is not None
        body = dict(task.body, startTime=formats.rfc3339(self.cloud.now()), retried=attempt)
        self._put(task, body)
        res, execution = self._execution()
        execution["runningCount"] = execution.get("runningCount", 0) + 1
        self._put(res, execution)

    def _task_ended(self, index: int, attempt: int, code: int | None, retry: bool) -> None:
        """code: the process's exit code; None for an attempt stopped at its timeout."""
        stamp = formats.rfc3339(self.cloud.now())
        task = self.cloud.store.get("run", self.tasks[index].path)
        assert task is not None
        result: dict[str, Any]
        if code is None:
            result = {"status": {"code": 4, "message": "The task attempt exceeded its timeout "
                                 f"({task.body.get('timeout') or TIMEOUT}) and was stopped."}}
        else:
            result = {"exitCode": code, "status": {"code": 0 if code == 0 else 2}}
        if code not in (0, None):
            result["status"]["message"] = f"Application failed with exit code {code}"
        body = dict(task.body, lastAttemptResult=result, retried=attempt)
        if not retry:
            body["completionTime"] = stamp
            body["conditions"] = [{"type": "Completed",
                                   "state": SUCCEEDED if code == 0 else FAILED,
                                   "lastTransitionTime": stamp}]
        self._put(task, body)
        res, execution = self._execution()
        execution["runningCount"] = execution.get("runningCount", 1) - 1
        if retry:
            execution["retriedCount"] = execution.get("retriedCount", 0) + 1
        elif code == 0:
            execution["succeededCount"] = execution.get("succeededCount", 0) + 1
        else:
            execution["failedCount"] = execution.get("failedCount", 0) + 1
        self._put(res, execution)

    def _completed(self) -> None:
        now = self.cloud.now()
        stamp = formats.rfc3339(now)
        res, execution = self._execution()
        failed = execution.get("failedCount", 0)
        execution.update(completionTime=stamp, reconciling=False, conditions=[{
            "type": "Completed", "state": FAILED if failed else SUCCEEDED,
            "lastTransitionTime": stamp,
            **({"message": f"Task {self._first_failed()} failed."} if failed else {})}])
        self._put(res, execution)
        job = self.cloud.store.get("run", self.path.split("/executions/")[0])
        if job is not None and job.body.get("latestCreatedExecution", {}).get("name") == (
                self.path.rsplit("/", 1)[-1]):
            latest = dict(job.body["latestCreatedExecution"], completionTime=stamp,
                          completionStatus="EXECUTION_FAILED" if failed
                          else "EXECUTION_SUCCEEDED")
            self._put(job, dict(job.body, latestCreatedExecution=latest))
        self.op.end = now
        self.cloud.ops.add(self.op)
        self.cloud.advance(now)

    def _first_failed(self) -> int:
        for task in self.tasks:
            found = self.cloud.store.get("run", task.path)
            if found and found.body.get("conditions", [{}])[0].get("state") == FAILED:
                return int(found.body["index"])
        return 0


def _end_container(proc: subprocess.Popen[bytes]) -> None:
    """The attempt's container stops with its first process: whatever that process started
    (a shell's children) goes with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing is left of it
        os.killpg(proc.pid, signal.SIGKILL)
