"""The `provision` command: a thin shell over the Python API.

Heavy modules (client libraries, the engine) are imported inside commands, so that
`provision --help` answers at interpreter speed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import select
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from orchestrator.cli_options import (
    CHANGE,
    LEDGER,
    RUN,
    App,
    MaybePlanArg,
    Options,
    PlanArg,
    complete_from,
    complete_step,
    shared,
)

app = App(
    help="Build Google Cloud networking around Apigee X from a plan of ordered steps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Endpoints the user named with --trust-endpoint: the plan's `endpoints:` may use them, and
# the credentials go to them (see gcp/trust.py). Set by the root callback for this invocation.
_TRUSTED: list[str] = []
# The plans this invocation has read (see _read_plan); emptied by the root callback.
_PLANS: dict[tuple[str, ...], Any] = {}


def _version(shown: bool) -> None:
    if shown:
        from orchestrator.version import VERSION

        typer.echo(f"provision {VERSION}")
        raise typer.Exit()


# --verbosity: what each level adds on stderr (the levels are gcloud's).
VERBOSITY = {
    "debug": logging.DEBUG,  # each request's method and URL; an internal error's traceback
    "info": logging.INFO,  # each step's events; each retry, with Google's code
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 1,
}


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is when a line is logged: the live display puts it above
    itself while it runs."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _verbosity(level: str) -> None:
    if level not in VERBOSITY:
        raise _invalid(f"--verbosity {level!r}: expected one of {', '.join(VERBOSITY)}")
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # Only provision's own loggers: the client libraries' debug logs can carry request bodies
    # and tokens, which must not reach a terminal or a CI log.
    for name in ("provision", "provision_emulator"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(VERBOSITY[level])
        logger.propagate = False


def debugging() -> bool:
    """An internal error shows its traceback: --verbosity debug, or PROVISION_DEBUG set."""
    return bool(os.environ.get("PROVISION_DEBUG")) or \
        logging.getLogger("provision").isEnabledFor(logging.DEBUG)


@app.callback()
def _root(
    trust_endpoint: Annotated[
        list[str] | None,
        typer.Option("--trust-endpoint", metavar="URL",
                     help="Let the plan's endpoints: use this endpoint (scheme, host and port), "
                     "and send it your Google credentials; Google's own (https://*.googleapis"
                     ".com) need not be named. Repeatable; given on the command line only, "
                     "never by a plan."),
    ] = None,
    verbosity: Annotated[
        str,
        typer.Option("--verbosity", envvar="PROVISION_VERBOSITY",
                     metavar="debug|info|warning|error|critical|none",
                     autocompletion=complete_from(*VERBOSITY),
                     help="What is logged on stderr besides the output: info adds each step's "
                     "events and each retry; debug each request's method and URL, and an "
                     "internal error's traceback. Never headers or bodies. Anywhere on the "
                     "line."),
    ] = "warning",
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version,
                     help="Print provision's version and exit."),
    ] = False,
) -> None:
    _TRUSTED[:] = trust_endpoint or []
    _PLANS.clear()
    _verbosity(verbosity)


# What an interrupted run says.
RESUME = "the ledger records what was under way; run the same command again to resume."

INVALID = 2  # bad plan, flags or ledger
FAILED = 1  # a run that did not reach the desired state
CHANGES = 3  # `plan --detailed-exitcode`: changes are pending (2 stays "invalid input")
DENIED = 4  # the caller lacks permissions the run needs (found before any change)
INTERRUPTED = 130  # Ctrl-C, as a shell reports a process it interrupted


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    # soft_wrap: a resource path or URL stays on one line, whole, when output is not a terminal.
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _escape(text: str) -> str:
    """Text for a markup string: step ids such as net[a] are not style tags."""
    from rich.markup import escape

    return escape(text)


def _invalid(message: str) -> typer.Exit:
    _console(stderr=True).print(f"[red]error:[/] {_escape(message)}", highlight=False,
                                soft_wrap=True)
    return typer.Exit(INVALID)


def _diagnostics(exc: Any) -> NoReturn:
    """A PlanError's findings, each at its file:line, then how many: exit 2."""
    from orchestrator.display import plural

    err = _console(stderr=True)
    for diag in exc.diagnostics:
        err.print(str(diag), markup=False, highlight=False, soft_wrap=True)
    err.print(f"[red]{plural(len(exc.diagnostics), 'error')}[/]: nothing was sent to Google.")
    raise typer.Exit(INVALID)


def _confirm(question: str) -> None:
    """Ask; a no is "Nothing changed." and exit 1, Ctrl-C or end of input exit 130."""
    if not _ask(question):
        _console().print("Nothing changed.")
        raise typer.Exit(FAILED)


def _ask(question: str) -> bool:
    """Whether the answer is yes; Ctrl-C or the end of the input at the prompt exit 130."""
    try:
        return _answer(f"{question} [y/N]: ") in ("y", "yes")
    except (KeyboardInterrupt, EOFError):
        _console(stderr=True).print("\ninterrupted: nothing changed.")
        raise typer.Exit(INTERRUPTED) from None


def _answer(prompt: str) -> str:
    """A line from the terminal. The wait wakes four times a second: a Ctrl-C whose signal
    reached another of the process's threads leaves a blocking read asleep, and the handler
    (which runs on the main thread) only at its next wake."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    while not select.select([sys.stdin], [], [], 0.25)[0]:
        pass
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.strip().lower()


def _parse_vars(pairs: list[str] | None) -> dict[str, str]:
    return _key_values(pairs, "--var")


def _key_values(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """A repeatable KEY=VALUE option's values; exit 2 naming the flag for one without `=`."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _invalid(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _parse_quotas(pairs: list[str] | None) -> dict[str, int]:
    from google_facts.quotas import unknown_groups

    out: dict[str, int] = {}
    for pair in pairs or []:
        group, sep, value = pair.partition("=")
        if not sep or not value.isdigit() or int(value) < 1:
            raise _invalid(f"--quota {pair!r}: expected GROUP=N, N requests a minute (N ≥ 1)")
        out[group] = int(value)
    problem = unknown_groups(out)
    if problem:
        raise _invalid(f"--quota: {problem}")
    return out


def _read_plan(plan: Path, opts: Options, saved_vars: dict[str, Any] | None = None) -> Any:
    """The plan with its vars (PROVISION_VAR_name, then --var-file, then --var; or a saved
    plan's, all of them), or each of its diagnostics printed and exit 2. Read once per
    invocation: a var file may be a pipe (`--var-file <(vault read ...)`), read only once."""
    from orchestrator.plan import PlanError, load_plan

    key = (str(plan), tuple(opts.var), tuple(map(str, opts.var_file)), repr(saved_vars))
    if key in _PLANS:
        return _PLANS[key]
    try:
        if saved_vars is not None:
            model = load_plan(plan, saved_vars, _TRUSTED)
        else:
            model = load_plan(plan, _parse_vars(opts.var), _TRUSTED, os.environ,
                              var_files=opts.var_file)
    except PlanError as exc:
        _diagnostics(exc)
    _PLANS[key] = model
    return model


def _load(plan: Path | None, opts: Options, on_event: Any = None,
          saved_vars: dict[str, Any] | None = None) -> Any:
    from google.auth.exceptions import DefaultCredentialsError

    from orchestrator.api import Deployment
    from orchestrator.ledger import LedgerError

    limits = _parse_quotas(opts.quota)
    model = _read_plan(plan, opts, saved_vars) if plan is not None else None
    try:
        return Deployment(
            model,
            ledger=opts.ledger,
            emulator=_emulator_value(opts.emulator),
            impersonate=opts.impersonate,
            quota_project=opts.project,
            parallelism=opts.parallelism,
            on_event=on_event,
            lock_timeout=opts.lock_timeout,
            targets=tuple(opts.target),
            trust_endpoints=tuple(_TRUSTED),
            check_permissions=not opts.skip_permission_check,
            quotas=limits,
        )
    except LedgerError as exc:
        raise _invalid(str(exc)) from None
    except DefaultCredentialsError as exc:
        named = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if named:
            raise _invalid(
                f"GOOGLE_APPLICATION_CREDENTIALS={named}: {_first_sentence(exc)}. Point it at "
                "a credentials file, or unset it and run `gcloud auth application-default "
                "login`; or add --emulator to rehearse offline"
            ) from None
        raise _invalid(
            "no Google credentials found: run `gcloud auth application-default login` (or set "
            "GOOGLE_APPLICATION_CREDENTIALS), or add --emulator to rehearse offline"
        ) from None


@contextmanager
def _stores(opts: Options, *locations: str) -> Iterator[list[Any]]:
    """The ledger stores of `locations`. A file needs no credentials; a Cloud Storage ledger is
    reached with a deployment's clients (the emulator's, or Google's)."""
    from orchestrator.ledger import LedgerError, is_remote, open_store

    remote = next((location for location in locations if is_remote(location)), None)
    lock_timeout = opts.lock_timeout
    try:
        if remote is None:
            yield [open_store(location, lock_timeout=lock_timeout) for location in locations]
            return
        with _load(None, Options(emulator=opts.emulator, ledger=remote,
                                 lock_timeout=lock_timeout)) as dep:
            yield [
                open_store(location, storage=dep.clients.storage, lock_timeout=lock_timeout,
                           lease=dep.lock_lease)
                for location in locations
            ]
    except LedgerError as exc:
        raise _invalid(str(exc)) from None


def _first_sentence(exc: BaseException) -> str:
    return str(exc).split(". ")[0].rstrip(".")


def _require_ledger(store: Any, command: str) -> None:
    """A command that reads or undoes what a ledger records refuses a ledger that is not there,
    rather than make an empty one and report that nothing changed."""
    from orchestrator.ledger import LedgerError

    try:
        found = store.exists()
    except LedgerError as exc:
        raise _invalid(str(exc)) from None
    if not found:
        _no_ledger(store.location, command)


def _require_local_ledger(plan: Path | None, opts: Options, command: str) -> None:
    """The same, before anything starts (an embedded emulator writes its cloud beside the
    ledger): for a ledger on this machine."""
    from orchestrator.ledger import LedgerError, LocalStore, is_remote

    location = opts.ledger or _ledger_for(plan, opts)
    if is_remote(location):
        return  # asked once the deployment's clients can reach Cloud Storage
    try:
        found = LocalStore(location).exists()
    except LedgerError as exc:
        raise _invalid(str(exc)) from None
    if not found:
        _no_ledger(location, command)


def _no_ledger(location: str, command: str) -> NoReturn:
    raise _invalid(
        f"no ledger at {location}: nothing to {command}. Give the ledger an apply wrote "
        "(--ledger PATH) or the plan it applied; nothing was created."
    )


def _run(fn: Any, live: Any = None) -> Any:
    """Run an engine call, turning the errors users cause into messages, not tracebacks.
    live: the live display to end before a message is printed."""
    from google.auth.exceptions import RefreshError, TransportError

    from orchestrator.engine.preflight import MissingPermissions
    from orchestrator.engine.runner import StepError
    from orchestrator.engine.steps import InvalidRequest
    from orchestrator.gcp.clock import ClockError
    from orchestrator.gcp.errors import ApiError, DeadlineExceeded, MalformedRequest
    from orchestrator.ledger import LedgerError
    from orchestrator.plan import SecretError

    try:
        return fn()
    except (LedgerError, InvalidRequest, MalformedRequest) as exc:
        raise _invalid(str(exc)) from None
    except TransportError as exc:
        # Signing in happens at the first request: Google's token service was not reached.
        raise _invalid(
            f"could not reach Google to sign in ({_first_sentence(exc)}): check the network "
            "and the proxy (HTTPS_PROXY); or add --emulator to rehearse offline"
        ) from None
    except RefreshError as exc:
        raise _invalid(
            f"Google refused to renew your credentials ({_first_sentence(exc)}): run `gcloud "
            "auth application-default login` again; with --impersonate-service-account, check "
            "that you may act as it (roles/iam.serviceAccountTokenCreator); or add --emulator "
            "to rehearse offline"
        ) from None
    except ClockError as exc:
        # Raised before the first request (the emulator is not there) or during a run (it
        # stopped answering): the ledger records whatever was under way either way.
        raise _invalid(
            f"{exc}. Is the emulator running at that address? Once it answers, run the "
            "command again: it resumes from what the ledger records."
        ) from None
    except SecretError as exc:
        raise _invalid(f"{exc}. Nothing was sent to Google.") from None
    except MissingPermissions as exc:
        _console(stderr=True).print(
            f"[red]error:[/] {_escape(str(exc))}\nGrant the caller these roles (gcloud projects "
            "add-iam-policy-binding PROJECT --member=... --role=ROLE; on a service account, "
            "gcloud iam service-accounts add-iam-policy-binding), or run with "
            "--skip-permission-check to find out step by step.", highlight=False)
        raise typer.Exit(DENIED) from None
    except (ApiError, StepError, DeadlineExceeded) as exc:
        _console(stderr=True).print(f"[red]error:[/] {_escape(str(exc))}", highlight=False)
        raise typer.Exit(FAILED) from None
    except KeyboardInterrupt:
        if live is not None:
            live.stop()
        _console(stderr=True).print(f"[yellow]interrupted[/]: {RESUME}")
        sys.stdout.flush()
        sys.stderr.flush()
        # A Ctrl-C that came outside the scheduler's graceful wait (while it handed out steps,
        # say) leaves steps under way in their threads, which closing the deployment would
        # wait for: their intents are recorded, so the process ends here, as a kill would.
        os._exit(130)
    except OSError as exc:
        if exc.errno in REFUSED_BY_THE_MACHINE:
            raise _invalid(environment_problem(exc)) from None
        # A connection that failed during the run (not before it): the ledger records what
        # was under way.
        _console(stderr=True).print(
            f"[red]error:[/] {exc}. Run the command again once it is reachable: it resumes "
            "from what the ledger records.", highlight=False, soft_wrap=True)
        raise typer.Exit(FAILED) from None
    except Exception as exc:
        if debugging():
            raise
        _console(stderr=True).print(
            f"[red]internal error:[/] {type(exc).__name__}: {exc} (this is a bug in provision; "
            "--verbosity debug shows where). The ledger is consistent: run the command again "
            "once fixed.", highlight=False,
        )
        raise typer.Exit(FAILED) from None


def _emulator_value(value: str | None) -> str | None:
    from orchestrator.api import EMBEDDED

    if value in ("", "1", "true", EMBEDDED):
        return EMBEDDED
    if value and not value.startswith(("http://", "https://")):
        # Taken as a host, "localhost:8788" would be reached as https://localhost:8788.
        raise _invalid(
            f"--emulator {value!r}: expected the emulator's URL, such as "
            f"http://{value if ':' in value and '/' not in value else '127.0.0.1:8788'}, "
            "or --emulator alone for the embedded one (PROVISION_EMULATOR the same)"
        )
    return value or None


@app.command()
@shared("var", "var_file")
def validate(plan: PlanArg, opts: Options) -> None:
    """Check a plan without calling any API."""
    model = _read_plan(plan, opts)
    _console().print(f"{plan}: valid ({len(model.steps)} steps).")


@app.command()
@shared("var", "var_file", "json", json="The roles as JSON, by project.")
def roles(plan: PlanArg, opts: Options) -> None:
    """The predefined roles that apply and destroy of the plan need, per project, from what
    each step's kind declares; no API is called (plan and apply check the caller's own)."""
    from orchestrator.engine.preflight import label, roles_for

    needed = roles_for(_read_plan(plan, opts))
    if opts.json:
        print(json.dumps(needed))
        return
    print("To apply and destroy it, the caller needs these roles:")
    for where, granted in needed.items():
        print(f"  {label(where)}: {', '.join(granted)}")


@app.command("plan")
@shared(*(option for option in CHANGE if option != "yes"))  # it asks nothing
def plan_cmd(
    plan: PlanArg,
    opts: Options,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help=f"Exit {CHANGES} when changes are pending.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE",
                     help="Save the plan: provision apply FILE then does exactly it, or "
                     "nothing if the ledger or the cloud changed since."),
    ] = None,
) -> None:
    """Show what apply would change, from live reads."""
    from orchestrator.display import notes, render_preview

    _warn_targets(opts.target)
    with _load(plan, opts, on_event=notes(_console(stderr=opts.json))) as dep:
        preview = _run(dep.plan_changes)
        if out is not None:
            _save_plan(out, plan, opts, dep, preview)
    if opts.json:
        for event in preview.events():
            print(json.dumps(event.to_json(), default=repr))
    else:
        _console().print(render_preview(preview))
    if out is not None and not opts.json:
        _console().print(f"Saved to {out}: provision apply {out} does exactly this.",
                         highlight=False)
    if detailed_exitcode and preview.has_changes:
        raise typer.Exit(CHANGES)


def _warn_targets(targets: list[str] | None) -> None:
    if targets:
        _console(stderr=True).print(
            "[yellow]warning:[/] --target: only these steps and what they depend on (destroy: "
            "what depends on them) are looked at; the rest may differ from the plan unseen. "
            "For recovering from a mistake, not for routine use.", highlight=False)


def _save_plan(out: Path, plan: Path, opts: Options, dep: Any, preview: Any) -> None:
    """Save what was shown with every var's value as it was (whether from --var, a var file or
    the environment), so that the apply does the same whatever its environment."""
    from orchestrator.engine.saved_plan import SavedPlan, file_sha256, save

    try:
        save(SavedPlan(plan, file_sha256(plan), dict(dep.plan.vars), tuple(opts.target),
                       dep.ledger_location, preview), out)
    except OSError as exc:
        raise _invalid(f"{out}: {exc.strerror}") from None


@app.command()
@shared(*CHANGE)
def apply(
    plan: PlanArg,
    opts: Options,
    on_failure: Annotated[
        str,
        typer.Option("--on-failure", metavar="stop|rollback",
                     help="stop, or rollback: undo this apply's changes.",
                     autocompletion=complete_from("stop", "rollback")),
    ] = "stop",
    verify: Annotated[
        bool, typer.Option("--verify",
                           help="Then check that it carries traffic, as provision verify does.")
    ] = False,
) -> None:
    """Create or update everything the plan declares; or do what a saved plan says."""
    from orchestrator.engine.saved_plan import is_saved_plan
    from orchestrator.engine.saved_plan import load as load_saved

    if on_failure not in ("stop", "rollback"):
        raise _invalid(f"--on-failure {on_failure!r}: expected stop or rollback")
    if verify and opts.json:
        raise _invalid("--verify and --json do not mix (the events stream has one schema): "
                       "run provision verify --json after the apply")
    saved = None
    if is_saved_plan(plan):
        if opts.var or opts.var_file or opts.target or opts.ledger:
            raise _invalid(f"{plan} is a saved plan: it carries its vars, targets and ledger; "
                           "give them to provision plan -o instead")
        from orchestrator.engine.steps import InvalidRequest

        try:
            saved = load_saved(plan)
            saved.check_plan_file()
        except InvalidRequest as exc:
            raise _invalid(str(exc)) from None
        plan = saved.plan_file
        opts = replace(opts, ledger=saved.ledger, target=list(saved.targets))
    _warn_targets(opts.target)
    _execute("apply", plan, opts, on_failure=on_failure, saved=saved, verify=verify)


@app.command()
@shared(*LEDGER, "json", "impersonate", "project",
        json="The report as versioned JSON on stdout.")
def verify(
    plan: PlanArg,
    opts: Options,
    connectivity_tests: Annotated[
        bool, typer.Option("--connectivity-tests/--no-connectivity-tests",
                           help="Also ask Google's Network Management analysis about the hops "
                           "it can trace (connectivity tests, deleted afterwards).")
    ] = True,
    keep_tests: Annotated[
        bool, typer.Option("--keep-tests",
                           help="Keep the connectivity tests and the probe's debug data, to "
                           "look at them in the console.")
    ] = False,
    probe: Annotated[
        bool, typer.Option("--probe",
                           help="Also send a request through each API proxy target, under an "
                           "Apigee debug session, to an environment group's hostname (which "
                           "must be reachable from here), and report what became of it.")
    ] = False,
) -> None:
    """Check that what the plan applied carries traffic: each request path, hop by hop, from
    live reads (changes nothing but its connectivity tests). Exit 1 if a hop is broken."""
    with _load(plan, opts) as dep:
        _require_ledger(dep.store, "verify")
        report = _run(lambda: dep.verify(connectivity_tests, keep_tests, probe))
    _show_report(report, opts.json)


def _show_report(report: Any, json_: bool) -> None:
    if json_:
        print(json.dumps(report.to_json(), indent=2))
    else:
        from orchestrator.display import render_report

        _console().print(render_report(report))
    if not report.ok:
        raise typer.Exit(FAILED)


@app.command()
@shared(*CHANGE)
def destroy(plan: MaybePlanArg = None, *, opts: Options) -> None:
    """Delete everything the ledger records, dependents first."""
    opts = _with_only_ledger(plan, opts)
    _warn_targets(opts.target)
    _execute("destroy", plan, opts)


def _with_only_ledger(plan: Path | None, opts: Options) -> Options:
    """Without a plan or --ledger: the only ledger under .provision/."""
    if plan is None and opts.ledger is None:
        return replace(opts, ledger=str(_only_ledger()))
    return opts


def _only_ledger() -> Path:
    from orchestrator.api import STATE_DIR

    found = sorted(STATE_DIR.glob("*.ledger.json"))
    if len(found) != 1:
        listed = ", ".join(str(p) for p in found) or "none"
        raise _invalid(f"give a plan or --ledger (ledgers under {STATE_DIR}/: {listed})")
    return found[0]


def _execute(command: str, plan: Path | None, opts: Options, on_failure: str = "stop",
             saved: Any = None, verify: bool = False) -> None:
    from orchestrator.display import (
        LiveDisplay,
        json_events,
        notes,
        render_preview,
        render_result,
    )

    console = _console()
    json_, yes = opts.json, opts.yes
    events = json_events() if json_ else None
    if command == "destroy":
        _require_local_ledger(plan, opts, command)
    # A saved plan: exactly its vars, whatever this environment's.
    with _load(plan, opts, saved_vars=saved.vars if saved is not None else None) as dep:
        if command == "destroy":
            _require_ledger(dep.store, command)
        preview = saved.preview if saved is not None else None
        if command == "apply" and preview is not None and not json_:
            console.print(render_preview(preview))  # what was agreed to when it was saved
        elif command == "apply" and not json_:
            dep.on_event = notes(console)
            # The first reads load the client libraries: a few seconds not left blank.
            with console.status(f"Reading what exists of {len(dep.plan.steps)} steps..."):
                preview = _run(dep.plan_changes)
            console.print(render_preview(preview))
            if not preview.has_changes:
                if verify:
                    _show_report(_run(dep.verify), json_=False)
                return
            if not yes and sys.stdin.isatty():
                _confirm("Apply these changes?")
        elif command == "destroy" and not yes and sys.stdin.isatty() and not json_:
            from graphlib import TopologicalSorter

            recorded = dep.ledger().resources
            width = max((len(step) for step in recorded), default=0)
            # As destroy deletes them: every resource after those that depend on it.
            needs = {sid: set(rec.depends_on) & set(recorded) for sid, rec in recorded.items()}
            for step in reversed(list(TopologicalSorter(needs).static_order())):
                rec = recorded[step]
                console.print(f"  - {step:<{width}}  {rec.kind}  {rec.path}", markup=False,
                              highlight=False)
            _confirm(f"Destroy these {len(recorded)} resources recorded in "
                     f"{dep.ledger_location}?")
        order = [s.id for s in dep.plan.steps] if dep.plan else list(dep.ledger().resources)
        if command == "destroy":
            order.reverse()
        call = getattr(dep, command)
        if command == "apply":
            # Exactly what was shown (or saved), or nothing: see Engine.apply.
            call = lambda: dep.apply(on_failure=on_failure, approved=preview)  # noqa: E731
        since = dep.clock.now()
        scale = getattr(dep.clock, "scale", None)  # an emulator on the wall clock: its scale
        if events is not None:
            dep.on_event = events
            result = _run(call)
        else:
            with LiveDisplay(console, order, clock=dep.clock.now,
                             simulated=opts.emulator is not None, scale=scale) as live:
                dep.on_event = live
                result = _run(call, live)
            render_result(console, result, str(plan) if plan else None)
            if result.rollback is not None:
                render_result(console, result.rollback, str(plan) if plan else None)
        if result.ok and not json_:
            if command == "apply":
                _print_outputs(console, result.outputs, order)
            _print_next(console, command, plan, opts.emulator, dep, dep.clock.now() - since,
                        scale)
        report = _run(dep.verify) if verify and result.ok else None
    if not result.ok:
        raise typer.Exit(FAILED)
    if report is not None:
        _show_report(report, json_=False)


def _print_next(console: Any, command: str, plan: Path | None, emulator: str | None, dep: Any,
                elapsed: float, scale: float | None) -> None:
    """After a run: how long it took (on the emulator, Google's time: simulated), where the
    ledger is, and what one usually runs next."""
    from orchestrator.api import EMBEDDED
    from orchestrator.display import duration, simulated_times

    where = _emulator_value(emulator) if emulator is not None else None
    on = "" if where is None else " --emulator" if where == EMBEDDED else f" --emulator={where}"
    target = f" {plan}" if plan else f" --ledger {dep.ledger_location}"
    took = duration(elapsed)
    if emulator is not None and scale not in (None, 1):
        took += f" ({simulated_times(scale)})"
    elif emulator is not None:
        took += " (simulated: Google's durations on the emulator's clock)"
    console.print(f"Took {took}; ledger {dep.ledger_location}.", highlight=False, markup=False)
    after = {"apply": ("verify", "outputs", "destroy"), "destroy": ()}.get(command, ())
    if after:
        console.print("Next: " + ", ".join(
            f"provision {verb}{target}{on if verb != 'outputs' else ''}" for verb in after),
            highlight=False, markup=False)


def _print_outputs(console: Any, outputs: dict[str, dict[str, Any]], order: list[str]) -> None:
    """Each step's most telling output (an address, a URL, an email, else its path), in plan
    order; `provision outputs` prints them all."""
    keys = ("IPAddress", "address", "host", "uri", "email", "selfLink", "path")
    width = max((len(step) for step in outputs), default=0)
    for step in sorted(outputs, key=lambda s: order.index(s) if s in order else len(order)):
        values = outputs[step]
        shown = next((values[k] for k in keys if k in values), "")
        console.print(f"  {step:<{width}} = {shown}", highlight=False, markup=False)


@app.command()
@shared(*LEDGER, "json")
def outputs(
    plan: MaybePlanArg = None,
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="One output: STEP, or STEP.FIELD (vpc.selfLink). "
                       "Without a plan, give --ledger, or NAME alone when one ledger is here."),
    ] = None,
    *,
    opts: Options,
    raw: Annotated[
        bool, typer.Option("--raw",
                           help="NAME's value as it is, a string without quotes (for scripts).")
    ] = False,
) -> None:
    """Print what the ledger records of each resource's outputs (one JSON object by step), or
    of one, NAME."""
    if (plan is not None and name is None and not plan.exists()
            and plan.suffix not in (".yaml", ".yml")):
        plan, name = None, str(plan)  # `provision outputs vpc.selfLink`: a NAME, not a plan
    if raw and name is None:
        raise _invalid("--raw prints one value: give its NAME (STEP or STEP.FIELD)")
    location = opts.ledger or _ledger_for(plan, opts)
    with _stores(opts, location) as (store,):
        _require_ledger(store, "show the outputs of")
        data = store.load()
    values: Any = {s: r.outputs for s, r in data.resources.items() if r.status == "present"}
    if name is not None:
        values = _output_named(values, name, location)
    if raw and isinstance(values, str):
        print(values)
    elif opts.json or raw or not isinstance(values, dict | list):
        print(json.dumps(values, indent=2))
    else:
        _console().print_json(json.dumps(values))


def _output_named(values: dict[str, Any], name: str, location: str) -> Any:
    step, _, field = name.partition(".")
    if step not in values:
        from orchestrator.plan.errors import did_you_mean

        raise _invalid(f"{location} records no output of step {step!r}"
                       f"{did_you_mean(step, values)}")
    found: Any = values[step]
    for part in field.split(".") if field else ():
        if not isinstance(found, dict) or part not in found:
            keys = ", ".join(sorted(found)) if isinstance(found, dict) else "none"
            raise _invalid(f"step {step!r} has no output {part!r} (its outputs: {keys})")
        found = found[part]
    return found


@app.command()
@shared(*LEDGER, "json", json="The ledger's resources and runs as versioned JSON.")
def show(plan: MaybePlanArg = None, *, opts: Options) -> None:
    """Show the ledger: each resource, its status and the last runs."""
    from rich.console import Console
    from rich.table import Table

    location = opts.ledger or _ledger_for(plan, opts)
    with _stores(opts, location) as (store,):
        _require_ledger(store, "show")
        data = store.load()
    if opts.json:
        from orchestrator.engine.events import SCHEMA_VERSION

        print(json.dumps({
            "version": SCHEMA_VERSION, "ledger": location, "serial": data.serial,
            "resources": [{"step": sid, "kind": rec.kind, "status": rec.status,
                           "resource": rec.path} for sid, rec in data.resources.items()],
            "runs": [{"id": run.id, "command": run.command, "result": run.result}
                     for run in data.runs],
        }, indent=2))
        return
    # Piped, the table is as wide as its rows: no path cut at 80 columns.
    console = _console() if sys.stdout.isatty() else Console(width=10_000, highlight=False)
    table = Table("step", "kind", "status", "resource", title=f"{location} (serial {data.serial})")
    for sid, rec in data.resources.items():
        table.add_row(sid, rec.kind, rec.status, rec.path)
    console.print(table)
    for run in data.runs[-5:]:
        console.print(f"run {run.id}: {run.command} {run.result}", highlight=False)


def _ledger_for(plan: Path | None, opts: Options) -> str:
    if plan is None:
        return str(_only_ledger())
    from orchestrator.api import ledger_location
    from orchestrator.ledger import LedgerError

    try:
        return ledger_location(_read_plan(plan, opts))
    except LedgerError as exc:
        raise _invalid(str(exc)) from None


def _recovery(command: str, plan: Path | None, opts: Options, *args: str | None,
              confirm: str | None = None) -> None:
    from orchestrator.display import json_events, render_result

    opts = _with_only_ledger(plan, opts)
    if command != "import_resource":
        _require_local_ledger(plan, opts, command.replace("_", " "))
    with _load(plan, opts, on_event=json_events() if opts.json else None) as dep:
        if command != "import_resource":
            _require_ledger(dep.store, command.replace("_", " "))
        if confirm and not opts.yes and not opts.json and sys.stdin.isatty():
            _confirm(confirm.format(ledger=dep.ledger_location))
        result = _run(lambda: getattr(dep, command)(*args))
    if not opts.json:
        console = _console()
        # Routine outcomes are in the summary's counts; a resource found gone is news.
        for step, action in result.actions.items():
            if action == "gone":
                console.print(f"  {_escape(step)}: deleted outside provision; apply recreates it",
                              highlight=False)
        render_result(console, result, str(plan) if plan else None)
    if not result.ok:
        raise typer.Exit(FAILED)


@app.command("import")
@shared(*RUN)
def import_cmd(
    plan: PlanArg,
    step: Annotated[
        str, typer.Argument(help="The plan step the resource becomes.",
                            autocompletion=complete_step)
    ],
    resource: Annotated[
        str | None, typer.Argument(help="Its resource path (default: the step's own).")
    ] = None,
    *,
    opts: Options,
) -> None:
    """Put an existing resource under the ledger, as a step of the plan (nothing is changed)."""
    _recovery("import_resource", plan, opts, step, resource)


@app.command()
@shared(*RUN)
def refresh(plan: PlanArg, opts: Options) -> None:
    """Update the ledger's outputs from live state; report what was deleted outside."""
    _recovery("refresh", plan, opts)


@app.command()
@shared(*RUN, "yes")
def rollback(plan: MaybePlanArg = None, *, opts: Options) -> None:
    """Undo the last apply: delete what it created, restore what it updated."""
    _recovery("rollback", plan, opts, confirm=(
        "Undo the last apply recorded in {ledger} (delete what it created, restore what it "
        "updated)?"))


ledger_app = App(help="Look after the ledger file itself.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("mv")
@shared(*LEDGER, "json", "lock_timeout")
def ledger_mv(
    old: Annotated[str, typer.Argument(help="The step id the ledger records it under.")],
    new: Annotated[str, typer.Argument(help="The step id it moves to.")],
    plan: MaybePlanArg = None,
    *,
    opts: Options,
) -> None:
    """Move a record to another step id (a renamed step); the resource is not touched."""
    _recovery("move", plan, opts, old, new)


@ledger_app.command("rm")
@shared(*LEDGER, "json", "lock_timeout")
def ledger_rm(
    step: Annotated[str, typer.Argument(help="The step id whose record goes.")],
    plan: MaybePlanArg = None,
    *,
    opts: Options,
) -> None:
    """Forget a step's resource without deleting it: provision no longer owns it."""
    _recovery("forget", plan, opts, step)


@ledger_app.command("restore")
@shared(*LEDGER, "lock_timeout", "yes")
def ledger_restore(
    plan: MaybePlanArg = None,
    *,
    opts: Options,
    force: Annotated[bool, typer.Option(help="Restore even over an intact ledger.")] = False,
) -> None:
    """Put back the ledger's last good version: the valid part of a damaged journal, or the
    backup (.bak, the ledger as the last finished run left it). Shows it first and asks."""
    location = opts.ledger or _ledger_for(plan, opts)
    console = _console()

    def confirm(candidate: Any, source: str) -> bool:
        console.print(f"{location}: restore from {source}:", highlight=False)
        console.print(_describe_ledger(candidate), highlight=False)
        return opts.yes or not sys.stdin.isatty() or _ask("Restore it?")

    with _stores(opts, location) as (store,):
        restored = store.restore_backup(force=force, confirm=confirm)
    if restored is None:
        console.print("Nothing restored.")
        raise typer.Exit(FAILED)
    console.print(f"{location}: restored ({len(restored.resources)} resources, serial "
                  f"{restored.serial}).", highlight=False)


def _describe_ledger(ledger: Any) -> str:
    """A ledger in a few lines: serial, resources, and its last runs with when they ended."""
    lines = [f"  serial {ledger.serial}, {len(ledger.resources)} resources"]
    for run in ledger.runs[-3:]:
        lines.append(f"  run {run.id}: {run.command} {run.result}, "
                     f"{'ended ' + run.finished if run.finished else 'started ' + run.started}")
    return "\n".join(lines)


@app.command()
@shared(*LEDGER)
def unlock(
    lock_id: Annotated[str, typer.Argument(help="The lock id the refusal message gave.")],
    plan: MaybePlanArg = None,
    *,
    opts: Options,
) -> None:
    """Clear a ledger lock left by a process that is gone."""
    location = opts.ledger or _ledger_for(plan, opts)
    with _stores(opts, location) as (store,):
        info = store.force_unlock(lock_id)
    _console().print(f"{location}: unlocked ({info.describe()}).")


@ledger_app.command("migrate")
@shared(*LEDGER, "lock_timeout")
def ledger_migrate(
    to: Annotated[
        str,
        typer.Option("--to", help="Where the ledger goes: a file, or gs://BUCKET/PATH/NAME.json.",
                     show_default=False),
    ],
    plan: MaybePlanArg = None,
    *,
    opts: Options,
) -> None:
    """Move the ledger, with its secret-fingerprint key, between a file and Cloud Storage."""
    from orchestrator.ledger import migrate

    location = opts.ledger or _ledger_for(plan, opts)
    with _stores(opts, location, to) as (source, target):
        moved, kept = migrate(source, target)
    _console().print(
        f"{location}: moved to {to} ({len(moved.resources)} resources, serial {moved.serial}); "
        f"the old ledger is kept as {kept}. From now on use --ledger {to}, or "
        f"`settings: {{ledger: {to}}}` in the plan.", highlight=False,
    )


@app.command()
@shared(*LEDGER)
def graph(
    plan: PlanArg,
    opts: Options,
    fmt: Annotated[
        str | None,
        typer.Option("--format", metavar="mermaid|dot|svg",
                     help="mermaid (text), dot, or svg (needs Graphviz's dot); by default the "
                     "--output file's extension (.mmd, .dot or .gv, .svg), else mermaid.",
                     autocompletion=complete_from("mermaid", "dot", "svg")),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify",
                           help="Colour each step by what provision verify finds on the request "
                           "paths through it (reads live state).")
    ] = False,
) -> None:
    """Draw the plan: steps grouped by project and network, dependencies as edges, coloured by
    their status in the ledger (or, with --verify, by verify's hops)."""
    from orchestrator import graph as drawing

    if fmt is None:
        suffix = output.suffix.lower() if output is not None else ""
        fmt = {".svg": "svg", ".dot": "dot", ".gv": "dot"}.get(suffix, "mermaid")
    if fmt not in drawing.FORMATS:
        raise _invalid(f"--format {fmt!r}: expected one of {', '.join(drawing.FORMATS)}")
    model = _read_plan(plan, opts)
    location = opts.ledger or _ledger_for(plan, opts)
    verdicts = None
    if verify:
        with _load(plan, opts) as dep:
            _require_ledger(dep.store, "verify")
            recorded = dep.ledger()
            verdicts = dict(_run(dep.verify).step_statuses())
    else:
        with _stores(opts, location) as (store,):
            recorded = store.load()
    try:
        text = drawing.render(drawing.build(model, recorded, verdicts), fmt)
    except drawing.GraphvizMissing as exc:
        raise _invalid(str(exc)) from None
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the plan format (for editors)."""
    from orchestrator.plan import plan_json_schema

    print(json.dumps(plan_json_schema(), indent=2))


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8788,
    state: Annotated[Path | None, typer.Option(help="Keep the emulated cloud in this file.")]
    = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            metavar="SCALE",
            help="Run Google's durations on the wall clock, multiplied by SCALE (0.001: a "
            "30-minute operation takes 1.8 s), for clients that only poll, such as gcloud. "
            "Without it the clock is virtual: it jumps ahead whenever every provision client "
            "connected waits, so CPU load never spends simulated time.",
        ),
    ] = None,
    caller: Annotated[
        str, typer.Option(metavar="MEMBER", help="Who the emulator takes every request to "
                          "come from (user:NAME@DOMAIN, serviceAccount:EMAIL).")
    ] = "user:owner@example.com",
    grant: Annotated[
        list[str] | None,
        typer.Option(metavar="RESOURCE=ROLE",
                     help="Give the caller a predefined role on a project, a service account "
                     "or the organization (projects/P=roles/compute.networkAdmin); repeatable. "
                     "With none, the caller may do anything."),
    ] = None,
) -> None:
    """Serve the local Google Cloud emulator in the foreground."""
    from provision_emulator import serve

    grants: dict[str, list[str]] = {}
    for item in grant or []:
        resource, sep, role = item.partition("=")
        if not sep or not resource or not role:
            raise _invalid(f"--grant {item!r}: expected RESOURCE=ROLE "
                           "(projects/P=roles/compute.networkAdmin)")
        grants.setdefault(resource, []).append(role)
    access = {"caller": caller, "restricted": bool(grants), "grants": grants}
    if state is not None and not state.parent.is_dir():
        raise _invalid(f"--state {state}: the directory {state.parent} does not exist; create "
                       "it, or name a file in one that does")

    def ready(url: str) -> None:
        clock = (f"wall clock, Google's durations x {time_scale:g}" if time_scale is not None
                 else "virtual clock: simulated time moves while every provision client waits")
        print(f"provision emulator serving on {url} ({clock})\n"
              f"  point provision at it:  export PROVISION_EMULATOR={url}  (or --emulator {url})\n"
              f"  and gcloud:             gcloud config set auth/disable_credentials true; gcloud "
              f"config set api_endpoint_overrides/compute {url}/compute/  (one per API)\n"
              f"  the cloud is kept in:   {state or 'memory only (--state FILE to keep it)'}\n"
              "  Ctrl-C stops it.", flush=True)

    try:
        serve(port=port, state_file=state, time_scale=time_scale, access=access, ready=ready)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise _invalid(f"127.0.0.1:{port}: the address is in use: another process listens "
                       "there; choose another --port (0: any free one)") from None
    except ValueError as exc:  # a role the emulator does not know
        raise _invalid(f"--grant: {exc}") from None


def _normalise_argv(argv: list[str]) -> list[str]:
    """Let `--emulator` stand alone (typer options cannot take an optional value), and
    `--trust-endpoint` and `--verbosity` come after the command as well as before it."""
    out: list[str] = []
    trusted: list[str] = []
    i = 0
    while i < len(argv):
        arg, nxt = argv[i], argv[i + 1] if i + 1 < len(argv) else ""
        if arg in ("--trust-endpoint", "--verbosity"):
            trusted += [arg, nxt]
            i += 1
        elif arg.startswith(("--trust-endpoint=", "--verbosity=")):
            trusted.append(arg)
        elif arg == "--emulator" and not nxt.startswith(("http://", "https://")):
            out.append("--emulator=embedded")
        else:
            out.append(arg)
        i += 1
    return trusted + out


def _interrupts() -> None:
    """The first Ctrl-C raises KeyboardInterrupt: the run stops gracefully (see
    engine/scheduler.py). The second ends the process there and then, as a kill would: unwinding
    would release the ledger's lock while steps are still under way in their threads."""
    pressed: list[bool] = []

    def on_interrupt(signum: int, frame: Any) -> None:
        if not pressed:
            pressed.append(True)
            raise KeyboardInterrupt
        if sys.stdout.isatty():
            sys.stdout.write("\x1b[?25h\n")  # the live display hides the cursor
        sys.stdout.flush()
        sys.stderr.write(f"interrupted: {RESUME}\n")
        sys.stderr.flush()
        os._exit(130)

    signal.signal(signal.SIGINT, on_interrupt)


def main() -> None:
    _interrupts()
    try:
        app(args=_normalise_argv(sys.argv[1:]), prog_name="provision")
    except OSError as exc:
        # What the machine refused (a file, a directory, a port): not a bug, and nothing a
        # traceback helps with.
        if debugging():
            raise
        _console(stderr=True).print(f"[red]error:[/] {environment_problem(exc)}",
                                    highlight=False, soft_wrap=True)
        sys.exit(INVALID)


# What a file system refuses, and what to do about it.
_UNWRITABLE = "make it writable by this user (for the ledger, or give --ledger a place that is)"
REFUSED_BY_THE_MACHINE = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space (the disk quota is reached)",
    errno.EACCES: _UNWRITABLE,
    errno.EPERM: _UNWRITABLE,
    errno.EROFS: "choose a place on a writable file system (for the ledger, --ledger)",
}


def environment_problem(exc: OSError) -> str:
    """One line for what the machine refused: where, why, and what to do."""
    where = exc.filename or ""
    why = exc.strerror or str(exc)
    advice = REFUSED_BY_THE_MACHINE.get(exc.errno or 0)
    if advice is None:
        return f"{where + ': ' if where else ''}{why}"
    return (f"{where + ': ' if where else ''}{why}: {advice}, then run the command again "
            "(the ledger records what was done)")


# Last: the fleet commands use this module's options and helpers.
from orchestrator.cli_fleet import fleet_app  # noqa: E402

app.add_typer(fleet_app, name="fleet")
