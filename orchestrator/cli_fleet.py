"""`provision fleet plan|apply|destroy|status FLEET`: one plan over many instances."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import (
    FAILED,
    _confirm,
    _console,
    _diagnostics,
    _emulator_value,
    _escape,
    _invalid,
    _key_values,
)
from orchestrator.cli import _run as _engine_call
from orchestrator.cli_options import App, Options, shared

fleet_app = App(help="Run one plan over many instances (tenants, environments).",
                no_args_is_help=True)

FleetArg = Annotated[Path, typer.Argument(metavar="FLEET", help="The fleet file.")]
ShardOpt = Annotated[
    str | None,
    typer.Option("--shard", metavar="I/N",
                 help="Run the I-th of N slices of the instances (0-based), so that N runners "
                 "share the fleet: Cloud Run's $CLOUD_RUN_TASK_INDEX/$CLOUD_RUN_TASK_COUNT."),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option("--concurrency", min=1, metavar="N",
                 help="Instances under way at once (default: the fleet file's, else 32)."),
]
RunIdOpt = Annotated[
    str | None,
    typer.Option("--run-id", metavar="ID",
                 help="Shared by every shard of one run (default $CLOUD_RUN_EXECUTION): a "
                 "shard then starts a wave once every earlier-wave instance has finished."),
]


def _fleet(path: Path) -> Any:
    from orchestrator.fleet.model import load_fleet
    from orchestrator.plan import PlanError

    try:
        return load_fleet(path)
    except PlanError as exc:
        _diagnostics(exc)


def _line(result: Any, width: int, unit: str) -> str:
    color = {"failed": "red", "not started": "yellow"}.get(result.status, "green")
    steps = f"{result.steps_done}/{result.steps} steps" if result.steps else ""
    text = (f"{result.name:<{width}}  [{color}]{result.status:<11}[/]  {steps:<12}  "
            f"{result.elapsed:>7,.0f} {unit}")
    if result.message:
        text += f"  {_escape(result.message)}"
    return text


def _run_fleet(command: str, path: Path, emulator: str | None, shard: str | None,
               concurrency: int | None, run_id: str | None, yes: bool) -> None:
    import sys

    from orchestrator.fleet.model import parse_shard
    from orchestrator.fleet.runner import Runner, validate
    from orchestrator.fleet.session import open_session
    from orchestrator.plan import PlanError

    fleet = _fleet(path)
    try:
        sliced = parse_shard(shard) if shard else None
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    chosen = fleet.shard(*sliced) if sliced else fleet.instances
    try:
        validate(fleet, chosen)
    except PlanError as exc:
        _diagnostics(exc)
    console = _console()
    if command != "plan" and not yes and sys.stdin.isatty():
        _confirm(f"{command.capitalize()} {len(chosen)} instances of {fleet.plan}?")
    width = max(len(i.name) for i in chosen)
    with ExitStack() as stack:
        session = _engine_call(lambda: stack.enter_context(
            open_session(_emulator_value(emulator), Path(".provision"))))
        unit = "s (simulated)" if emulator is not None else "s"
        runner = Runner(fleet, emulator=session.emulator, clock=session.clock,
                        storage=session.storage, concurrency=concurrency,
                        run_id=run_id or os.environ.get("CLOUD_RUN_EXECUTION", ""),
                        on_result=lambda r: console.print(_line(r, width, unit)))
        with session.clock.busy():
            result = _engine_call(lambda: runner.run(command, sliced, validated=True))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts().items()))
    slowest = max((r.elapsed for r in result.instances), default=0.0)
    console.print(f"fleet {command}: {counts}; slowest instance {slowest:,.0f} {unit}, "
                  f"the fleet {result.wall:,.0f} {unit}")
    if not result.ok:
        raise typer.Exit(FAILED)


@fleet_app.command("plan")
@shared("emulator")
def fleet_plan(fleet: FleetArg, opts: Options, shard: ShardOpt = None,
               concurrency: ConcurrencyOpt = None) -> None:
    """Show what apply would change in each instance."""
    _run_fleet("plan", fleet, opts.emulator, shard, concurrency, None, True)


@fleet_app.command("apply")
@shared("emulator", "yes")
def fleet_apply(fleet: FleetArg, opts: Options, shard: ShardOpt = None,
                concurrency: ConcurrencyOpt = None, run_id: RunIdOpt = None) -> None:
    """Apply the plan to every instance, wave after wave."""
    _run_fleet("apply", fleet, opts.emulator, shard, concurrency, run_id, opts.yes)


@fleet_app.command("destroy")
@shared("emulator", "yes")
def fleet_destroy(fleet: FleetArg, opts: Options, shard: ShardOpt = None,
                  concurrency: ConcurrencyOpt = None, run_id: RunIdOpt = None) -> None:
    """Destroy every instance, the last wave first."""
    _run_fleet("destroy", fleet, opts.emulator, shard, concurrency, run_id, opts.yes)


@fleet_app.command("status")
@shared("emulator")
def fleet_status(fleet: FleetArg, opts: Options) -> None:
    """Each instance's last command, as its runner recorded it in the fleet's state."""
    from orchestrator.fleet.session import open_session
    from orchestrator.fleet.space import Space

    model = _fleet(fleet)
    console = _console()
    width = max(len(i.name) for i in model.instances)
    with open_session(_emulator_value(opts.emulator) if model.state.startswith("gs://") else None,
                      Path(".provision")) as session, session.clock.busy():
        space = Space(model.state, session.storage)
        records = [(i, space.read_status(i.name)) for i in model.instances]
    for inst, rec in records:
        if rec is None:
            console.print(f"{inst.name:<{width}}  wave {inst.wave}  never run")
            continue
        steps = f"{rec.get('steps_done', 0)}/{rec.get('steps', 0)} steps" if rec.get(
            "steps") else ""
        message = f"  {_escape(str(rec['message']))}" if rec.get("message") else ""
        console.print(f"{inst.name:<{width}}  wave {inst.wave}  {rec.get('command', '?'):<7}  "
                      f"{rec.get('state', '?'):<11}  {steps:<12}{message}")


ImageOpt = Annotated[str, typer.Option("--image", metavar="IMAGE",
                                       help="The container image with provision installed.")]
AccountOpt = Annotated[
    str | None, typer.Option("--service-account", metavar="EMAIL",
                             help="The identity the tasks run as (default: the project's).")]
TasksOpt = Annotated[
    int | None, typer.Option("--tasks", min=1, metavar="N",
                             help="Tasks, each running one shard (default: one per instance, "
                             "at most 50).")]
RetriesOpt = Annotated[int, typer.Option("--retries", min=0, metavar="N",
                                         help="Retries of a failed task.")]
JobTimeoutOpt = Annotated[str, typer.Option("--timeout", metavar="SECONDS",
                                            help="A task attempt's limit, as 3600s.")]
EnvOpt = Annotated[list[str] | None, typer.Option("--env", metavar="KEY=VALUE",
                                                  help="Set in the tasks; repeatable.")]


def _spec(image: str, account: str | None, tasks: int | None, retries: int, timeout: str,
          env: list[str] | None) -> Any:
    from orchestrator.fleet.cloudrun import JobSpec

    if not timeout.endswith("s") or not timeout[:-1].isdigit():
        raise _invalid(f"--timeout {timeout!r}: expected seconds, as 3600s")
    return JobSpec(image, account, tasks, retries, timeout, _key_values(env, "--env"))


@fleet_app.command("render")
def fleet_render(
    fleet: FleetArg,
    image: ImageOpt,
    target: Annotated[str, typer.Option("--target", metavar="cloud-run-job",
                                        help="What to render: cloud-run-job.")] = "cloud-run-job",
    service_account: AccountOpt = None,
    tasks: TasksOpt = None,
    retries: RetriesOpt = 3,
    timeout: JobTimeoutOpt = "86400s",
    env: EnvOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="FILE",
                                             help="Write it here instead of stdout.")] = None,
) -> None:
    """The Cloud Run job (Admin API v2 JSON, as jobs.create takes it) whose indexed tasks each
    run one shard of the fleet."""
    import json

    from orchestrator.fleet.cloudrun import job_body

    if target != "cloud-run-job":
        raise _invalid(f"--target {target!r}: expected cloud-run-job")
    model = _fleet(fleet)
    body = job_body(str(fleet), model, _spec(image, service_account, tasks, retries, timeout,
                                             env))
    text = json.dumps(body, indent=2) + "\n"
    if out is None:
        print(text, end="")
        return
    try:
        out.write_text(text)
    except OSError as exc:
        raise _invalid(f"{out}: {exc.strerror}") from None


@fleet_app.command("launch")
@shared("emulator")
def fleet_launch(
    fleet: FleetArg,
    image: ImageOpt,
    project: Annotated[str, typer.Option("--project", metavar="PROJECT",
                                         help="The project the job runs in.")],
    region: Annotated[str, typer.Option("--region", metavar="REGION",
                                        help="The job's region.")],
    job: Annotated[str | None, typer.Option("--job", metavar="NAME",
                                            help="The job's name (default provision-FLEET).")]
    = None,
    service_account: AccountOpt = None,
    tasks: TasksOpt = None,
    retries: RetriesOpt = 3,
    timeout: JobTimeoutOpt = "86400s",
    env: EnvOpt = None,
    *,
    opts: Options,
) -> None:
    """Create or update the fleet's Cloud Run job, run an execution and follow its tasks."""
    from orchestrator.fleet.cloudrun import failed, job_body, launch
    from orchestrator.fleet.session import open_session

    model = _fleet(fleet)
    spec = _spec(image, service_account, tasks, retries, timeout, env)
    emulator = opts.emulator
    if emulator is None and not model.state.startswith("gs://"):
        raise _invalid(f"{fleet}: state {model.state} is a directory of this machine, which "
                       "Cloud Run tasks cannot see: set state: gs://BUCKET/PREFIX")
    console = _console()
    name = f"projects/{project}/locations/{region}/jobs/{job or f'provision-{model.name}'}"
    with ExitStack() as stack:
        session = _engine_call(lambda: stack.enter_context(
            open_session(_emulator_value(emulator), Path(".provision"))))
        if session.url is not None:  # the tasks act on the same emulator
            spec.env = {"PROVISION_EMULATOR": session.url, **(spec.env or {})}
        body = job_body(str(fleet), model, spec)

        def progress(execution: dict[str, Any]) -> None:
            console.print(f"  {execution.get('runningCount', 0)} running, "
                          f"{execution.get('succeededCount', 0)} succeeded, "
                          f"{execution.get('failedCount', 0)} failed, "
                          f"{execution.get('retriedCount', 0)} retried")

        with session.clock.busy():
            since = session.clock.now()
            execution, ran = _engine_call(lambda: launch(
                body, job=name, clients=session.clients(), clock=session.clock,
                on_progress=progress,
                on_job=lambda verb: console.print(f"job {name} {verb}; running "
                                                  f"{body['template']['taskCount']} tasks")))
            elapsed = session.clock.now() - since
    for task in ran:
        result = task.get("lastAttemptResult", {})
        state = task.get("conditions", [{}])[0].get("state", "").removeprefix("CONDITION_")
        # No exit code: the attempt did not exit (Google stopped it at its timeout, say).
        how = (f"exit {result['exitCode']}" if "exitCode" in result
               else _escape(result.get("status", {}).get("message", "no exit code")))
        console.print(f"task {task.get('index', 0)}: {state.lower()} ({how}, "
                      f"{task.get('retried', 0)} retries)  {task.get('logUri', '')}",
                      highlight=False)
    verdict = "failed" if failed(execution) else "succeeded"
    console.print(f"execution {execution['name'].rsplit('/', 1)[-1]} {verdict} in "
                  f"{elapsed:,.0f} s; `provision fleet status {fleet}` shows each instance")
    if failed(execution):
        raise typer.Exit(FAILED)
