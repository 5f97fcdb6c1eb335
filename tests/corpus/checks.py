"""What must hold for every edit: the plan's actions are apply's, and the emulator's log shows
just those; a second plan shows nothing; nothing the plan keeps was deleted; nothing is
orphaned."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator import kinds
from orchestrator.engine.steps import scope_from_path
from provision_emulator.formats import project_number

# Google's refusal of an edit's value: an error answer, or an operation Google accepted and
# then ended with an error (a Service Networking connection whose range is no longer
# VPC_PEERING: "Allocated IP range ... not found in network").
_HTTP_STATUS = re.compile(r"^\d{3} |^operation \S+ failed: ")
_PROJECT = re.compile(r"projects/([a-z][a-z0-9-]+)")


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)  # the tool's: each fails the corpus
    refused: list[str] = field(default_factory=list)  # Google's refusals of the edit's values
    actions: dict[str, str] = field(default_factory=dict)
    requests: int = 0


def check(emulator: Any, dep: Any) -> Outcome:
    out = Outcome()
    before_resources = _resources(emulator)
    before_ledger = _owned(dep.ledger())
    plan = dep.plan_changes()
    planned = {c.step: c for c in plan.steps}
    since = len(emulator.requests())
    result = dep.apply(approved=plan)
    mutating = [r for r in emulator.requests()[since:] if r["mutating"]]
    out.requests = len(mutating)
    out.actions = {s: c.action for s, c in planned.items() if c.action != "noop"}

    failures = [f"{f.step}: {f.message[:300]}" for f in result.failures]
    if any(_HTTP_STATUS.match(f.message) for f in result.failures):
        # Google refused a value of the edit (what else failed followed from it): the revert
        # that follows is checked in full.
        out.refused = failures
        return out
    out.problems += failures
    if failures:
        return out
    if result.skipped or result.cancelled:
        out.problems.append(f"skipped {result.skipped}, cancelled {result.cancelled}")

    for step, change in planned.items():
        done = result.actions.get(step)
        if done == change.action or (done == "noop" and not change.settled):
            continue
        out.problems.append(f"{step}: planned {change.action}, apply did {done}")
    for step in set(result.actions) - set(planned):
        out.problems.append(f"{step}: apply did {result.actions[step]}, not planned")

    changing = [c for c in plan.steps
                if c.action != "noop" and result.actions.get(c.step) != "noop"]
    for request in mutating:
        if not any(_related(request, c) for c in changing):
            out.problems.append(f"{request['method']} {request['path']}: no planned change")
    for change in changing:
        if change.action == "leave" or (change.action == "delete" and _left(change)):
            continue
        if not any(_related(r, change) for r in mutating):
            out.problems.append(f"{change.step}: planned {change.action}, no request made")
    kept = {c.resource for c in plan.steps if c.action in ("noop", "update")}
    for request in mutating:
        if request["method"].endswith(".delete") and _path(request) in kept:
            out.problems.append(f"{_path(request)}: deleted, and the plan keeps it")

    second = dep.plan_changes()
    if second.has_changes:
        out.problems.append("second plan: " + ", ".join(
            f"{c.step} {c.action}" for c in second.steps if c.action != "noop" or c.moved_from))

    after_ledger = _owned(dep.ledger())
    homes = {"/".join(p.split("/")[:2]) for p in after_ledger | before_ledger}
    for api, path in _resources(emulator) - {(a, p) for a, p in before_resources
                                              if p not in before_ledger}:
        # Resources Google makes in its own projects (a tenant's service attachment) are not
        # the plan's to own.
        home = "/".join(path.split("/")[:2]) in homes
        if home and path not in after_ledger and _of_a_kind(api, path):
            out.problems.append(f"orphan: {path}")
    return out


def _owned(ledger: Any) -> set[str]:
    """The paths the ledger owns, as the emulator spells them too: for resources Google names
    (an Apigee attachment, whose step names it by its environment), under the name Google
    gave."""
    owned = set()
    for rec in ledger.resources.values():
        owned.add(rec.path)
        # Service Networking names a network by its project's number.
        owned.add(_PROJECT.sub(lambda m: "projects/" + project_number(m.group(1)), rec.path))
        name = rec.outputs.get("name")
        if isinstance(name, str) and name and "/" not in name:
            owned.add(rec.path.rsplit("/", 1)[0] + "/" + name)
    return owned


def _resources(emulator: Any) -> set[tuple[str, str]]:
    return {(api, path) for api, by_path in emulator.dump()["resources"].items()
            for path in by_path}


def _of_a_kind(api: str, path: str) -> bool:
    """Whether the path is one a plan step could own. What a `configures` kind configures (the
    peering Service Networking makes) is its maker's, and what is left on destroy (an enabled
    API) its project's: neither is an orphan."""
    for kind in kinds.registry().values():
        if kind.api != api or kind.configures or kind.left_on_destroy:
            continue
        try:
            scope_from_path(kind, path)
        except ValueError:
            continue
        return True
    return False


def _path(request: dict[str, Any]) -> str:
    """The resource path a logged request names: no API prefix, version or custom verb."""
    path = request["path"].split("?", 1)[0]
    found = re.search(r"(?:^|/)((?:projects|organizations|services)/.*)$", path)
    path = found.group(1) if found else path
    return path.split(":", 1)[0]


def _related(request: dict[str, Any], change: Any) -> bool:
    """Whether a request acts on the step's resource: its parent is a prefix of the step's path
    (a create in a collection, a patch of the router an interface lives in), or the step's
    kind is of the request's API and its path is named otherwise (a connection) or not yet
    known (it holds the name of an organization still to be made)."""
    req = _path(request).split("/")
    step = change.resource.split("/")
    previous = change.previous.split("/") if change.previous else []
    if any(p[: len(req) - 1] == req[:-1] for p in (step, previous) if p):
        return True
    kind = kinds.get(change.kind)
    if kind is None or kind.api != request["api"]:
        return False
    # A proxy is deployed under its environment: .../environments/e/apis/NAME/revisions/1/...
    named = "/" + "/".join(step[-2:]) + "/" in "/" + _path(request) + "/"
    # A managed group's named ports are set on its instance group, which has its name.
    if step[-2] == "instanceGroupManagers":
        named = named or _path(request).startswith("/".join([*step[:-2], "instanceGroups",
                                                             step[-1]]))
    elsewhere = "${" in change.resource or not _path(request).startswith(
        ("projects/", "organizations/"))
    return named or elsewhere


def _left(change: Any) -> bool:
    kind = kinds.get(change.kind)
    return bool(kind and kind.left_on_destroy)
