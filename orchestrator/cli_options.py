"""The options many commands share, declared once.

A command names the ones it takes, `@shared("var", "ledger", ...)`, and receives them as one
`Options` value; its help lists them after its own parameters. `Command` and `Group` make the
help read as Terraform's and gcloud's do.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption


@dataclass(frozen=True)
class Options:
    """What the shared options were given; each field's option is in DECLARED."""

    var: list[str] = field(default_factory=list)
    var_file: list[Path] = field(default_factory=list)
    emulator: str | None = None
    ledger: str | None = None
    json: bool = False
    impersonate: str | None = None
    project: str | None = None
    parallelism: int = 8
    yes: bool = False
    lock_timeout: float = 0.0
    target: list[str] = field(default_factory=list)
    skip_permission_check: bool = False
    quota: list[str] = field(default_factory=list)


def complete_plan(incomplete: str) -> list[str]:
    """Shell completion of a plan file: *.yaml and *.yml files, and directories to look in."""
    found: list[str] = []
    for _ in range(8):  # bounded: a symlink can lead back up
        found = _plan_files(incomplete)
        # A lone directory is opened rather than offered: bash would end the word after it.
        if len(found) != 1 or not found[0].endswith("/"):
            break
        incomplete = found[0]
    return found


def _plan_files(incomplete: str) -> list[str]:
    head, prefix = os.path.split(incomplete)
    try:
        entries = sorted(os.scandir(os.path.expanduser(head) or "."), key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for entry in entries:
        hidden = entry.name.startswith(".") and not prefix.startswith(".")
        if hidden or not entry.name.startswith(prefix):
            continue
        path = os.path.join(head, entry.name)
        if entry.is_dir():
            out.append(path + "/")
        elif entry.name.endswith((".yaml", ".yml")):
            out.append(path)
    return out


def complete_step(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Shell completion of a step id: the steps of the plan given before it, with their kinds.

    The YAML is only parsed, not validated (validation loads Google's discovery documents): a
    completion has to come back while the user waits at the prompt."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    plan = ctx.params.get("plan") or _plan_on_the_line()
    if plan is None:
        return []
    try:
        data = YAML(typ="safe").load(Path(plan).read_text())
    except (OSError, UnicodeDecodeError, YAMLError):
        return []  # nothing to offer; the command itself will say what is wrong with the file
    steps = data.get("steps") if isinstance(data, dict) else None
    out = []
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and str(step.get("id", "")).startswith(incomplete):
            out.append((str(step["id"]), str(step.get("kind", ""))))
    return out


def _plan_on_the_line() -> str | None:
    """The plan file among the words being completed. An option's value (--target's) is
    completed before click has assigned the positional arguments, so the plan is not yet in
    the context; the shell's words are in the environment (bash's COMP_WORDS, typer's
    _TYPER_COMPLETE_ARGS for zsh, fish and PowerShell)."""
    words = (os.environ.get("COMP_WORDS") or os.environ.get("_TYPER_COMPLETE_ARGS") or "").split()
    for before, word in zip(words, words[1:], strict=False):
        if before != "--var-file" and word.endswith((".yaml", ".yml")) and os.path.isfile(word):
            return word
    return None


def complete_from(*values: str) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]

    return complete


PlanArg = Annotated[
    Path,
    typer.Argument(help="Plan file (YAML).", show_default=False, metavar="PLAN",
                   autocompletion=complete_plan),
]
MaybePlanArg = Annotated[
    Path | None,
    typer.Argument(help="Plan file; without it, --ledger or the only ledger under .provision/.",
                   show_default=False, metavar="PLAN", autocompletion=complete_plan),
]

DECLARED: dict[str, Any] = {
    "var": Annotated[list[str] | None, typer.Option(
        "--var", metavar="KEY=VALUE",
        help="Set a plan var; repeatable. Wins over --var-file and PROVISION_VAR_name.")],
    "var_file": Annotated[list[Path] | None, typer.Option(
        "--var-file", metavar="FILE", autocompletion=complete_plan,
        help="Set plan vars from a YAML file of NAME: VALUE; repeatable, later files win. "
        "Wins over PROVISION_VAR_name.")],
    "emulator": Annotated[str | None, typer.Option(
        "--emulator", envvar="PROVISION_EMULATOR", metavar="[URL]",
        help="Use an emulator instead of Google: alone, an in-process one whose cloud persists "
        "under .provision/; with =URL, that server.")],
    "ledger": Annotated[str | None, typer.Option(
        "--ledger", metavar="PATH",
        help="Ledger file, or gs://BUCKET/PATH/NAME.json; default the plan's settings.ledger, "
        "else .provision/PLAN.ledger.json")],
    "json": Annotated[bool, typer.Option(
        "--json", help="Versioned JSON-lines events on stdout.")],
    "impersonate": Annotated[str | None, typer.Option(
        "--impersonate-service-account", metavar="EMAIL", help="Act as this service account.")],
    "project": Annotated[str | None, typer.Option(
        "--project", metavar="PROJECT", help="Quota and billing project for API calls.")],
    "parallelism": Annotated[int, typer.Option(
        "--parallelism", min=1, metavar="N",
        help="Steps at work at once (a step waiting on Google's operation, or sleeping between "
        "polls, does not count; 1: one step at a time, in file order).")],
    "yes": Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")],
    "lock_timeout": Annotated[float, typer.Option(
        "--lock-timeout", min=0, metavar="SECONDS",
        help="Seconds to wait for the ledger's lock while another run holds it (0: refuse).")],
    "target": Annotated[list[str] | None, typer.Option(
        "--target", metavar="STEP", autocompletion=complete_step,
        help="Only this step, with what it needs (destroy: with what needs it); repeatable. "
        "Not for routine use: the rest goes unchecked.")],
    "skip_permission_check": Annotated[bool, typer.Option(
        "--skip-permission-check",
        help="Do not first ask Google whether you hold the permissions the changes need (a "
        "missing one then fails its step mid-run).")],
    "quota": Annotated[list[str] | None, typer.Option(
        "--quota", metavar="GROUP=N",
        help="Requests a minute for a quota group whose limit is not Google's default "
        "(compute.read, compute.write, compute.heavy, serviceusage.read, serviceusage.write, "
        "apigee.request); requests are paced to it. Repeatable.")],
}

# The sets commands take: where the plan's vars and ledger come from; a run against Google;
# a run that changes things.
LEDGER = ("var", "var_file", "ledger", "emulator")
RUN = (*LEDGER, "json", "impersonate", "project", "lock_timeout")
CHANGE = (*RUN, "parallelism", "yes", "target", "skip_permission_check", "quota")

Fn = TypeVar("Fn", bound=Callable[..., Any])


def shared(*names: str, **helps: str) -> Callable[[Fn], Fn]:
    """Add the shared options `names` to a command, which takes them as `opts: Options`.
    helps: a help text of this command's own for an option (json="The report as JSON.")."""
    unknown = set(names) - set(DECLARED) or set(helps) - set(names)
    if unknown:
        raise ValueError(f"no shared option {sorted(unknown)}")
    defaults = {f.name: f for f in fields(Options)}

    def decorate(fn: Fn) -> Fn:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values()
               if p.name != "opts"]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                              annotation=_with_help(DECLARED[name], helps.get(name)),
                              default=_default(defaults[name]))
            for name in names
        ]

        @functools.wraps(fn)
        def command(**given: Any) -> Any:
            chosen = {name: given.pop(name) for name in names}
            values = {k: v for k, v in chosen.items() if v is not None}
            return fn(opts=Options(**values), **given)

        # typer reads a command's parameters from its signature and type hints.
        parameters = own + added
        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        return command  # type: ignore[return-value]

    return decorate


def _default(spec: Any) -> Any:
    # A repeatable option's default is None on the command line (typer's convention).
    return None if spec.default_factory is list else spec.default


def _with_help(declared: Any, text: str | None) -> Any:
    if text is None:
        return declared
    kind, info = get_args(declared)
    info = copy.copy(info)
    info.help = text
    return Annotated[kind, info]


def _plain_help(params: list[Any]) -> list[Any]:
    # A flag takes no value: no type beside it (typer would print `--help <bool>`).
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


def _plain_usage(pieces: list[str]) -> list[str]:
    # A required argument is PLAN, as in Terraform's and gcloud's usage (typer writes {PLAN}).
    return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_help(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _plain_usage(super().collect_usage_pieces(ctx))


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_help(super().get_params(ctx))


class App(typer.Typer):
    """A typer app whose commands and groups print help as Command and Group do."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, name: str | None = None, **kwargs: Any) -> Any:
        def register(fn: Fn) -> Fn:
            # The docstring's paragraphs, each one line: typer keeps a docstring's line breaks,
            # which cut the commands' list mid-sentence.
            doc = inspect.getdoc(fn) or ""
            text = "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))
            kwargs.setdefault("help", text or None)
            return super(App, self).command(name, cls=Command, **kwargs)(fn)

        return register
