"""The permission preflight: before its first change, a run asks Google which of the
permissions its steps need the caller holds, and refuses to start without them.

Each kind says what its actions need (`Kind.permissions`, from Google's documentation of each
method it calls); Google answers for a project, and for the account a resource runs as
(`Kind.runs_as`), through gcp/iam.py. A permission held above the project (Shared VPC's) is not
asked, but named, as no project can answer for it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google_facts import permissions
from orchestrator.engine.steps import InvalidRequest, StepError, kind_named
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.iam import held_permissions
from orchestrator.kinds.base import Kind
from orchestrator.plan.refs import find_refs, has_refs

_PROJECT = re.compile(r"(?:^|/)(?:projects|organizations)/([a-z][-a-z0-9]{4,28}[a-z0-9])(?:/|$)")
_ACCOUNT = re.compile(r"^[^@\s]+@([a-z][-a-z0-9]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$")
# Resource Manager's testIamPermissions takes at most this many permissions a call.
_BATCH = 100


@dataclass(frozen=True)
class Need:
    """A permission one step needs on one resource: "projects/P", or a service account."""

    step: str
    action: str
    resource: str
    permission: str


@dataclass
class Report:
    """What the caller lacks (`missing`), and what could not be asked (`unchecked`, each with
    why)."""

    missing: list[Need] = field(default_factory=list)
    unchecked: list[tuple[Need, str]] = field(default_factory=list)
    unseen: set[str] = field(default_factory=set)  # projects Google would not answer for

    def describe(self) -> str:
        lines: list[str] = []
        by_resource: dict[str, list[Need]] = defaultdict(list)
        for need in self.missing:
            by_resource[need.resource].append(need)
        for resource, needs in by_resource.items():
            gone = " (it does not exist, or you may not see it)" if resource in self.unseen else ""
            lines.append(f"  on {label(resource)}{gone}:")
            by_step: dict[tuple[str, str], list[str]] = defaultdict(list)
            for need in needs:
                by_step[(need.step, need.action)].append(need.permission)
            for (step, action), perms in by_step.items():
                lines.append(f"    {step} ({action}): {', '.join(perms)}")
            roles = covering_roles({n.permission for n in needs})
            lines.append(f"    roles that grant them: {', '.join(roles) or '(none known)'}")
        lines += [f"  {unchecked(need, why)}" for need, why in self.unchecked]
        return "\n".join(lines)


ABOVE = "granted on the organization or folder above the project, never on it"
INVALID = "Google would not test it on this resource"


def unchecked(need: Need, why: str) -> str:
    """The line that says a permission was not asked, and which roles grant it."""
    roles = ", ".join(permissions.roles_granting(need.permission)) or "(none known)"
    return (f"not checked: {need.permission} for {need.step} ({need.action}) on "
            f"{label(need.resource)}: {why}; it is in {roles}")


def label(resource: str) -> str:
    """A resource permissions are granted on, as a person says it: "project P", "service
    account E" (anything else as it is)."""
    if "/serviceAccounts/" in resource:
        return f"service account {resource.rsplit('/', 1)[-1]}"
    return resource.replace("projects/", "project ", 1)


def covering_roles(wanted: set[str]) -> list[str]:
    """A few predefined roles that together grant `wanted`, in name order: the role that grants
    the most of what is left (the narrower on a tie), until nothing is; a basic role only when
    nothing narrower will do."""
    left, chosen = set(wanted), []
    while left:
        best = max(
            sorted({r for p in left for r in permissions.roles_granting(p)}),
            key=lambda r: (r.count(".") > 0, len(left & permissions.roles()[r]),
                           -len(permissions.roles()[r])),
            default=None,
        )
        if best is None:
            break
        chosen.append(best)
        left -= permissions.roles()[best]
    return sorted(chosen)


def project_of(path: str) -> str | None:
    """The project a resource path is in (an Apigee organization is named after its project);
    None while the path still holds a reference."""
    if has_refs(path):
        return None
    found = _PROJECT.search(path)
    return found.group(1) if found else None


def needs(step: str, kind: Kind, action: str, path: str, spec: Mapping[str, Any],
          account: str | None, elsewhere: Callable[[Any], str | None] = lambda value: None,
          ) -> list[Need]:
    """What `action` on one step needs. `account`: the service account it runs as, when the
    kind has one (its email, or "projects/P" when only its project is known: one still to
    make, or the project's default identity). `elsewhere`: the project a property's value
    names (a referenced step's), where it is not in the value itself."""
    project = project_of(path)
    if project is None:
        return []
    out = [Need(step, action, f"projects/{project}", p) for p in kind.permissions(action)]
    for permission, value in kind.uses(action, spec):
        used_in = (project_of(value) if isinstance(value, str) else None) or elsewhere(value)
        out.append(Need(step, action, f"projects/{used_in or project}", permission))
    if action in ("create", "update", "replace"):
        if account is None and kind.default_identity:
            account = f"projects/{project}"
        resource = account if account is None or account.startswith("projects/") else (
            _account(account))
        if resource:
            out.append(Need(step, action, resource, permissions.ACT_AS))
    return out


def step_needs(plan: Any, records: Mapping[str, Any], step_id: str, action: str) -> list[Need]:
    """What `action` on one step needs, before anything is read: a step of the plan judged by
    the plan (its project, the account it runs as), one only the ledger records by its record.
    A replace needs the delete of what the ledger records as well as the create."""
    out: list[Need] = []
    step = _plan_step(plan, step_id)
    rec = records.get(step_id)
    if step is not None and action != "delete":
        kind = kind_named(step.kind)
        # A replace makes the new resource where the plan says (a move: another project,
        # maybe) and deletes the old one where the ledger recorded it.
        made = "create" if action == "replace" and rec is not None else action
        out += needs(step_id, kind, made, f"projects/{_project_of(plan, step)}",
                     step.properties, _runs_as(plan, records, step, kind),
                     lambda value: _referenced_project(plan, value))
    if rec is not None and action in ("delete", "replace"):
        kind = kind_named(rec.kind)
        if not kind.left_on_destroy:  # destroy leaves it: nothing is called
            out += needs(step_id, kind, "delete", rec.path, rec.spec, None)
    return out


def _referenced_project(plan: Any, value: Any) -> str | None:
    refs = [r for r in find_refs(value) if r.scope == "step"] if isinstance(value, str) else []
    named = _plan_step(plan, refs[0].target) if refs else None
    return _project_of(plan, named) if named is not None else None


def roles_for(plan: Any) -> dict[str, list[str]]:
    """The predefined roles a caller needs to apply and destroy `plan` from nothing: per
    resource ("projects/P"; for what is granted above projects, "organization or folder"),
    a few roles that together grant every permission its steps' kinds declare."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for step in plan.steps:
        # With nothing recorded, a step's replace is its create and its delete, in its project.
        for need in step_needs(plan, {}, step.id, "replace"):
            above = need.permission in permissions.ABOVE_PROJECT
            wanted["organization or folder" if above else need.resource].add(need.permission)
    return {resource: covering_roles(perms) for resource, perms in wanted.items()}


def _plan_step(plan: Any, step_id: str) -> Any:
    if plan is None:  # a destroy from the ledger alone
        return None
    try:
        return plan.step(step_id)
    except KeyError:
        return None


def _project_of(plan: Any, step: Any, seen: frozenset[str] = frozenset()) -> str:
    """The project a step acts in: its own, or where it names another step's resource (an
    Apigee organization, by reference), that step's."""
    value = step.scope.get("project") or step.scope.get("organization") or step.name
    refs = [r for r in find_refs(value) if r.scope == "step" and r.target not in seen]
    named = _plan_step(plan, refs[0].target) if refs else None
    return value if named is None else _project_of(plan, named, seen | {step.id})


def _runs_as(plan: Any, records: Mapping[str, Any], step: Any, kind: Kind) -> str | None:
    """The service account a step's resource runs as: its email, or "projects/P" for one
    another step of the plan is still to make in P; None when it names none."""
    value: Any = step.properties
    for part in kind.runs_as.split(".") if kind.runs_as else ():
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        return None
    refs = [r for r in find_refs(value) if r.scope == "step"]
    if not refs:
        return None if find_refs(value) else value
    rec = records.get(refs[0].target)
    if rec is not None and rec.status == "present" and rec.outputs.get("email"):
        return str(rec.outputs["email"])
    made_by = _plan_step(plan, refs[0].target)
    return f"projects/{_project_of(plan, made_by)}" if made_by is not None else None


def _account(email: str) -> str:
    """An account's resource name: under its project where its email says which, else under
    `-`, which IAM resolves (a default account, NUMBER-compute@developer...)."""
    found = _ACCOUNT.match(email)
    return f"projects/{found.group(1) if found else '-'}/serviceAccounts/{email}"


class MissingPermissions(Exception):
    """The caller lacks permissions the run needs; raised before its first change."""

    def __init__(self, report: Report) -> None:
        self.report = report
        count = len({(n.resource, n.permission) for n in report.missing})
        super().__init__(
            f"the caller lacks {count} permission{'s' if count != 1 else ''} this run needs; "
            f"nothing was changed:\n{report.describe()}"
        )


class Checker:
    """Asks Google once per resource and permission, for the life of one run."""

    def __init__(self, clients: Any, call: Callable[[Callable[[], Any]], Any]) -> None:
        self._clients = clients
        self._call = call  # the engine's retry policy around one request
        self._held: dict[str, set[str]] = defaultdict(set)
        self._asked: dict[str, set[str]] = defaultdict(set)
        self._unseen: set[str] = set()
        self._invalid: dict[str, set[str]] = defaultdict(set)  # refused as not testable

    def check(self, wanted: Iterable[Need]) -> Report:
        wanted = list(wanted)
        report = Report()
        to_ask: dict[str, set[str]] = defaultdict(set)
        for need in wanted:
            if need.permission in permissions.ABOVE_PROJECT:
                continue
            if need.permission not in self._asked[need.resource]:
                to_ask[need.resource].add(need.permission)
        for resource, perms in to_ask.items():
            self._ask(resource, sorted(perms))
        for need in wanted:
            if need.permission in permissions.ABOVE_PROJECT:
                report.unchecked.append((need, ABOVE))
            elif need.permission in self._invalid[need.resource]:
                report.unchecked.append((need, INVALID))
            elif need.permission not in self._held[need.resource]:
                report.missing.append(need)
        report.unseen = {n.resource for n in report.missing} & self._unseen
        return report

    def _ask(self, resource: str, perms: list[str]) -> None:
        for start in range(0, len(perms), _BATCH):
            batch = perms[start:start + _BATCH]
            self._held[resource] |= self._test(resource, batch)
            self._asked[resource] |= set(batch)

    def _test(self, resource: str, perms: list[str]) -> set[str]:
        try:
            return self._call(lambda: held_permissions(self._clients, resource, perms))
        except OSError as exc:
            # The run's first contact with Google: nothing has been asked of it yet.
            raise InvalidRequest(
                f"{exc}: check the network and proxy (HTTPS_PROXY), and the plan's endpoints:; "
                "or add --emulator to rehearse offline. Nothing was changed."
            ) from None
        except Exception as exc:
            api = from_exception(exc)
            if api is None:
                raise
            account = "/serviceAccounts/" in resource
            if api.code == 403:
                # Google's answer for a project or account that does not exist, or that the
                # caller may not see: none of its permissions are held.
                self._unseen.add(resource)
                return set()
            if api.not_found and account and not resource.startswith("projects/-/"):
                # An account the plan is still to make: what its project grants counts.
                return self._test(resource.split("/serviceAccounts/")[0], perms)
            if api.code == 400:
                # A permission Google will not test on this resource: find it, halving.
                if len(perms) == 1:
                    self._invalid[resource].add(perms[0])
                    return set()
                half = len(perms) // 2
                return self._test(resource, perms[:half]) | self._test(resource, perms[half:])
            raise StepError(
                f"could not check your permissions on {label(resource)}: {api.message}. "
                "Run with --skip-permission-check to go without the check."
            ) from None
