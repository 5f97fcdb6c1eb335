"""A fleet as a Cloud Run job: N indexed tasks, each running its shard of the instances.

`job_body` is the job (GoogleCloudRunV2Job, as `jobs.create` takes it): every task runs
`provision fleet apply FLEET --shard $CLOUD_RUN_TASK_INDEX/$CLOUD_RUN_TASK_COUNT --yes` in the
image, through `/bin/sh -c` because a container's command is "not executed within a shell"
(the discovery document's words) and the shard is read from the variables Cloud Run sets for
each task (https://cloud.google.com/run/docs/container-contract#jobs-env-vars). All tasks of
one execution share CLOUD_RUN_EXECUTION, which the runner takes as its run id: a shard starts a
wave once every earlier-wave instance has finished in that execution.

`launch` creates the job or updates it, runs an execution through the Cloud Run Admin API v2
and follows it until it completes.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.fleet.model import Fleet
from orchestrator.gcp import retry
from orchestrator.gcp.errors import ApiError, DeadlineExceeded
from orchestrator.gcp.operations import OperationRef, Waiter, invoke

# A task attempt's limit: a day (Cloud Run's default is 600 s, too short for an Apigee
# organization; its maximum is 168 hours).
TIMEOUT = "86400s"
MAX_TASKS = 50
FOLLOW_POLL = 10.0  # seconds between reads of a running execution
JOB_TIMEOUT = 7 * 86400.0


@dataclass
class JobSpec:
    image: str
    service_account: str | None = None
    tasks: int | None = None
    retries: int = 3
    timeout: str = TIMEOUT
    env: dict[str, str] | None = None
    command: str = "provision"


def job_body(fleet_file: str, fleet: Fleet, spec: JobSpec) -> dict[str, Any]:
    tasks = spec.tasks or min(len(fleet.instances), MAX_TASKS)
    script = (f"exec {spec.command} fleet apply {shlex.quote(fleet_file)} "
              '--shard "$CLOUD_RUN_TASK_INDEX/$CLOUD_RUN_TASK_COUNT" --yes')
    container: dict[str, Any] = {"image": spec.image, "command": ["/bin/sh", "-c"],
                                 "args": [script]}
    if spec.env:
        container["env"] = [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    template: dict[str, Any] = {"maxRetries": spec.retries, "timeout": spec.timeout,
                                "containers": [container]}
    if spec.service_account:
        template["serviceAccount"] = spec.service_account
    return {"labels": {"provision-fleet": fleet.name},
            "template": {"taskCount": tasks, "parallelism": tasks, "template": template}}


def launch(body: dict[str, Any], *, job: str, clients: Any, clock: Any,
           on_progress: Callable[[dict[str, Any]], None] | None = None,
           on_job: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[dict]]:
    """Create or update the job `job` (projects/P/locations/R/jobs/NAME) and run it; returns
    the completed execution and its tasks. Raises ApiError as Google answers, or
    DeadlineExceeded."""
    svc = clients.discovery("run")
    waiter = Waiter(clients, clock)
    deadline = clock.now() + JOB_TIMEOUT

    def call(method: str, **params: Any) -> dict[str, Any]:
        # Through the engine's retry policy: Google's transient answers are waited out, the
        # rest raised as ApiError.
        return retry.call(lambda: invoke(svc, f"run.projects.locations.jobs{method}", **params),
                          deadline=deadline, clock=clock)

    try:
        call(".get", name=job)
        exists = True
    except ApiError as exc:
        if not exc.not_found:
            raise
        exists = False
    if exists:
        op = call(".patch", name=job, body=body)
    else:
        parent, _, job_id = job.rpartition("/jobs/")
        op = call(".create", parent=parent, jobId=job_id, body=body)
    waiter.wait(OperationRef(type="lro", api="run", name=op["name"]), deadline)
    if on_job:
        on_job("updated" if exists else "created")
    run = call(".run", name=job, body={})
    execution_name = run["metadata"]["name"]
    seen: tuple[Any, ...] = ()
    while True:
        execution = call(".executions.get", name=execution_name)
        counts = tuple(execution.get(k, 0) for k in ("runningCount", "succeededCount",
                                                       "failedCount", "retriedCount"))
        if counts != seen and on_progress:
            on_progress(execution)
        seen = counts
        if execution.get("completionTime"):
            break
        if clock.now() >= deadline:
            raise DeadlineExceeded(f"execution {execution_name} still running after "
                                   f"{JOB_TIMEOUT:,.0f} s: follow it in the console, or with "
                                   "provision fleet status")
        clock.sleep(FOLLOW_POLL)
    tasks: list[dict[str, Any]] = []
    token = None
    while True:
        page = call(".executions.tasks.list", parent=execution_name,
                    **({"pageToken": token} if token else {}))
        tasks += page.get("tasks", [])
        token = page.get("nextPageToken")
        if not token:
            return execution, sorted(tasks, key=lambda t: t.get("index", 0))


def failed(execution: dict[str, Any]) -> bool:
    return any(c.get("type") == "Completed" and c.get("state") == "CONDITION_FAILED"
               for c in execution.get("conditions", []))
