"""Plan: what apply will do, decided once from live reads, and then done as decided.

Each step is read and compared with what it should be, in dependency order, so that a step's
references resolve to what its dependencies will be after apply: their live values where they
stay, their desired values where they change, "known after apply" where Google decides.

A replacement propagates. A step that refers to a replaced step in its path (a child of it), or
by a value that names the replaced resource (Google refuses to delete a resource another one
uses), or that depends on a replaced resource Google keeps while anything uses it (a kind with
`delete_blockers`), is replaced too: deleted before it, created after it. One that takes a
value of it that only apply will know is updated, or replaced where that field cannot change
in place.
Replacement is destroy-before-create, under the same name, because many resources cannot
coexist with their successor (a subnet's range may not overlap itself in its network).

A step whose path changed (a new name, project or region, through vars or edits) moves: its
old resource is deleted and the new one created. Records of steps no longer in the plan are
listed as deleted (or left in place, for what belongs to its project); one whose resource a
plan step now describes is refused, never deleted: that is a rename, said with `moved:`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.engine import ownership, preflight
from orchestrator.engine.diff import Change, diff, same_value
from orchestrator.engine.events import Event
from orchestrator.engine.results import KNOWN_AFTER_APPLY, Preview, StepChange
from orchestrator.engine.scheduler import run_graph
from orchestrator.engine.steps import (
    InvalidRequest,
    MissingOutput,
    Resolved,
    StepError,
    Unknown,
    kind_named,
    output_at,
    resolve_step,
    target_of,
)
from orchestrator.gcp.errors import ApiError, DeadlineExceeded, MalformedRequest
from orchestrator.kinds.adapter import ElementChange
from orchestrator.kinds.base import Kind
from orchestrator.ledger import fingerprint_matches
from orchestrator.plan.errors import did_you_mean
from orchestrator.plan.refs import find_refs

# Statuses of a record whose last run ended (gone: a refresh found it deleted outside).
_SETTLED = ("present", "gone")
# Outputs a resource keeps when it is deleted and made again at the same path.
_IDENTITY = ("name", "selfLink", "path")


@dataclass(frozen=True)
class Prediction:
    """A step's outputs as they will be after apply: `values`, and whether an output it lacks
    is unknown until then (a resource still to be made) or absent."""

    values: dict[str, Any]
    complete: bool
    unknown: frozenset[str] = frozenset()  # references inside `values` only apply will know


class Planning:
    """Mixed into `Engine`: uses its ledger, locking, reading and resolving primitives."""

    def preview(self: Any) -> Preview:
        """What apply would do, from live reads; nothing is changed. Under the ledger's lock, as
        the other commands: a plan read while another run applies would show that run's steps
        in flight as changes still to make."""
        self._check_secrets()
        with self._locked("plan"):
            self._load()
            return self._plan()

    def _plan(self: Any) -> Preview:
        """The plan against the loaded ledger. Leaves each step's live read in `_plan_live`, for
        apply to use where nothing it depends on changes."""
        self._check_plan_name()
        self._apply_moves()
        planned: dict[str, StepChange] = {}
        predicted: dict[str, Prediction] = {}
        self._plan_live = {}
        in_scope = self._targeted()
        order = [s.id for s in in_scope]
        # Before any read: what the ledger says each step will need (a step it does not
        # record, a create). Refused here only if the reads themselves would be; the changes
        # the plan decides are checked once known, below, before any is made.
        recorded = self._ledger.resources
        self._check_permissions(
            [(s.id, "read" if recorded.get(s.id) and recorded[s.id].status == "present"
              else "create") for s in in_scope]
            + [(sid, "delete") for sid in recorded
               if sid not in order and (not self.targets or sid in self.targets)],
            unless_readable=True,
        )

        def read_step(step_id: str) -> None:
            step = self.plan.step(step_id)
            kind = kind_named(step.kind)
            with self._lock:
                upstream = {d: (planned[d], predicted[d]) for d in step.deps}
            unknown: set[str] = set()
            res = self._resolve_with(step, kind, upstream, unknown)
            deadline = self.clock.now() + (step.timeout or kind.timeout)
            rec = self._ledger.resources.get(step_id)
            target = res.target
            if res.unknown and rec is not None and rec.path == target.path:
                # Some adapters read through fields of the spec (a connection's network): the
                # recorded one is complete.
                target = target_of(kind, rec.path, rec.spec)
            # A step new to the ledger whose dependencies are still to be made cannot exist.
            unmade = rec is None and (res.unknown or any(
                c.action == "create" for c, _ in upstream.values()))
            live = None
            if not unmade and (not res.unknown or target is not res.target):
                try:
                    live = self._read(kind, target, deadline)
                except ApiError as exc:
                    if not exc.not_found:
                        raise _unreadable(step_id, kind, res, exc) from exc
                    # What it lives in is not there (a network in a project the plan now
                    # names): neither is it.
                except DeadlineExceeded as exc:
                    raise _unreadable(step_id, kind, res, exc) from exc
                except MalformedRequest as exc:
                    raise MalformedRequest(f"step {step_id} ({target.path}): {exc}") from None
            remade = live is None and (rec is None or rec.path == res.target.path) and any(
                c.action != "noop" for c, _ in upstream.values())
            if kind.configures and (unmade or remade):
                # What it configures comes with what its dependencies make (or make again):
                # apply updates it.
                change = StepChange(step_id, kind.name, "update", res.target.path,
                                    _all_new(res.body), "configures what its dependencies make")
            else:
                change = self._decide(step, kind, res, live, unknown)
            change = self._propagate(step, kind, change, upstream, live)
            change = replace(change, fingerprint=res.fingerprint,
                             observed=_observed(kind, res, live))
            with self._lock:
                planned[step_id] = change
                predicted[step_id] = _predict(kind, change, res, live, frozenset(unknown))
                self._plan_live[step_id] = (res, live, bool(unknown))

        deps = {s.id: set(s.deps) for s in in_scope}
        outcome = run_graph(
            order, deps, read_step, parallelism=self.parallelism, workers=self.workers,
            clock=self.clock,
        )
        if outcome.failed:
            raise next(iter(outcome.failed.values()))
        moved = dict((new, old) for old, new in self._moved)
        steps = [replace(planned[s], moved_from=moved.get(s, "")) for s in order]
        preview = Preview(tuple(steps) + self._removed(planned), serial=self._ledger.serial,
                          lineage=self._ledger.lineage)
        self._check_permissions([(c.step, c.action) for c in preview.steps])
        self._preview_batches(preview)
        return preview

    def _preview_batches(self: Any, preview: Preview) -> None:
        """For each parent whose elements apply writes in batches (a router's interfaces and
        peers), what Google's preview of the batch says (the adapter's `preview_batch`, `parent`
        and `describe`): the parent as it would be, or its
        refusal, which the steps would meet at apply. Said as diagnostics; a parent not made
        yet, or a change whose values are known only once other steps have run, is not
        previewed."""
        batches: dict[str, list[tuple[str, Any, ElementChange]]] = {}
        for change in preview.steps:
            kind = kind_named(change.kind)
            if change.action not in ("create", "update") or not (
                    kind.serialize and hasattr(kind.adapter, "preview_batch")):
                continue
            res, _, unknown = self._plan_live.get(change.step, (None, None, True))
            if res is None or unknown:
                continue
            key = kind.serialize.format(name=res.target.name, **res.target.scope)
            batches.setdefault(key, []).append(
                (change.step, kind, ElementChange(kind.adapter, change.action, res.target,
                                                  res.body)))
        for batch in batches.values():
            kind, changes = batch[0][1], [c for _, _, c in batch]
            steps = ", ".join(step for step, _, _ in batch)
            parent = kind.adapter.parent(changes[0].target)
            try:
                shown = self._ask(functools.partial(kind.adapter.preview_batch, self.clients,
                                                    changes))
            except ApiError as exc:
                self._emit(Event("diagnostic", step=batch[0][0], data={"level": "warning"},
                                 message=f"Google's preview of {parent} with the changes "
                                 f"of {steps} refuses them ({exc}): apply would fail there"))
                continue
            if shown is not None:
                self._emit(Event("diagnostic", step=batch[0][0], message=(
                    f"{parent}, as Google previews it with the changes of {steps}: "
                    f"{kind.adapter.describe(shown)}")))

    def _check_permissions(
        self: Any, actions: list[tuple[str, str]], unless_readable: bool = False,
    ) -> None:
        """Refuse (MissingPermissions) when the caller lacks what these (step, action) pairs
        need (see engine/preflight.py). unless_readable: only if some of it is what reading
        the steps needs (what the plan then decides may need less: a step found made)."""
        if self.permission_check is None:
            return
        records = self._ledger.resources
        wanted = [need for step_id, action in actions
                  for need in preflight.step_needs(self.plan, records, step_id, action)]
        report = self.permission_check.check(wanted)
        reads = {need for step_id, _ in actions
                 for need in preflight.step_needs(self.plan, records, step_id, "read")}
        blocking = report.missing and (not unless_readable or any(
            preflight.Need(n.step, "read", n.resource, n.permission) in reads
            for n in report.missing))
        if blocking:
            raise preflight.MissingPermissions(report)
        for need, why in report.unchecked:
            said = preflight.unchecked(need, why)
            if said not in self._said:  # once per run, though asked before and after reads
                self._said.add(said)
                self._emit(Event("diagnostic", step=need.step, message=said))

    def _targeted(self: Any) -> list[Any]:
        """The plan's steps, or with targets, the targeted ones and all they need."""
        if not self.targets:
            return list(self.plan.steps)
        ids = {s.id for s in self.plan.steps}
        unknown = sorted(set(self.targets) - ids - set(self._ledger.resources))
        if unknown:
            raise InvalidRequest(
                f"--target {unknown[0]}: neither the plan nor the ledger has that step"
                f"{did_you_mean(unknown[0], ids | set(self._ledger.resources))}"
            )
        wanted: set[str] = set()
        stack = [t for t in self.targets if t in ids]
        while stack:
            sid = stack.pop()
            if sid not in wanted:
                wanted.add(sid)
                stack.extend(self.plan.step(sid).deps)
        return [s for s in self.plan.steps if s.id in wanted]

    def _check_plan_name(self: Any) -> None:
        """A ledger made for another plan would have apply delete all it records as removed."""
        recorded = self._ledger.plan
        if recorded and recorded != self.plan.name:
            raise InvalidRequest(
                f"this ledger was made for plan {recorded!r}, not {self.plan.name!r} "
                f"({self.plan.path}): give the ledger of {self.plan.name!r} with --ledger, or "
                f"rename the plan back to {recorded!r} if it is the same architecture"
            )

    def _apply_moves(self: Any) -> None:
        """The plan's `moved:` entries, applied to the loaded ledger: the record changes step,
        the resource stays. Apply makes them durable with its first write. A move already
        made (the record is under its new step) is passed over, so the entry may stay."""
        self._moved = []
        for old, new in self.plan.moved:
            if old in self._ledger.resources and new not in self._ledger.resources:
                self._move_record(old, new)
                self._moved.append((old, new))

    def _removed(self: Any, planned: dict[str, StepChange]) -> tuple[StepChange, ...]:
        claimed = {c.resource: c.step for c in planned.values()}
        out: list[StepChange] = []
        for step_id, rec in self._ledger.resources.items():
            if step_id in planned or rec.status == "failed":
                continue
            if self.targets and step_id not in self.targets:
                continue
            if rec.path in claimed:
                raise InvalidRequest(
                    f"step {claimed[rec.path]!r} describes {rec.path}, which this ledger "
                    f"records as step {step_id!r}, no longer in the plan. If it was renamed, "
                    f"add to the plan\n  moved:\n    - {{from: {step_id}, to: {claimed[rec.path]}}}"
                    f"\nor run: provision ledger mv {step_id} {claimed[rec.path]}"
                )
            kind = kind_named(rec.kind)
            action = "leave" if kind.left_on_destroy else "delete"
            out.append(StepChange(step_id, rec.kind, action, rec.path, (), "removed from the plan"))
        return tuple(out)

    def _resolve_with(
        self: Any, step: Any, kind: Kind, upstream: dict[str, tuple[StepChange, Prediction]],
        unknown: set[str],
    ) -> Resolved:
        """Resolve a step against what its dependencies will be; `unknown` collects the
        references whose value only apply will know."""

        def lookup(ref: Any) -> Any:
            if ref.scope == "secrets" or ref.target not in upstream:
                return self._lookup(ref)
            prediction = upstream[ref.target][1]
            try:
                value = output_at(prediction.values, ref.path)
            except MissingOutput as missing:
                if prediction.complete:
                    raise StepError(f"{ref.text}: step {ref.target!r} has no output "
                                    f"{missing.args[0]!r}") from None
                unknown.add(ref.text)
                return Unknown(ref.text)
            inherited = {u for u in prediction.unknown if _holds(value, {u})}
            unknown.update(inherited)
            return value

        return resolve_step(step, kind, lookup, self._fingerprint_secret)

    def _decide(
        self: Any, step: Any, kind: Kind, res: Resolved, live: dict[str, Any] | None,
        unknown: set[str] = frozenset(), recorded: bool = True,
    ) -> StepChange:
        """recorded=False: as if the ledger had no record of the step."""
        rec = self._ledger.resources.get(step.id) if recorded else None
        path = res.target.path
        previous = rec.path if rec is not None and rec.path != path else ""
        moves = f"; moves from {previous} to {path}" if previous else ""
        if rec is not None and rec.status == "deleting":
            # The deletion half of a replace or a move did not finish: finish it, then create.
            return StepChange(step.id, kind.name, "replace", path, (), f"resume: delete{moves}",
                              previous=previous)
        if rec is not None and rec.status == "gone" and rec.error is None:
            # The deletion half of a replace or a move is done: its create is what is left,
            # decided as for a step without a record (what is live there is not the ledger's).
            fresh = self._decide(step, kind, res, live, unknown, recorded=False)
            return replace(fresh, reason=f"resume: replace{moves}" if live is None
                           else fresh.reason, previous=previous)
        stale_create = (
            rec is not None and rec.path == path and rec.status in ("pending", "in_flight")
            and live is not None and (rec.operation is None or rec.operation.action == "create")
            and rec.fingerprint != res.fingerprint
        )
        if (rec is not None and rec.path == path and rec.status not in _SETTLED
                and not stale_create):
            # A run stopped before this step settled: apply must resume it, whatever is live.
            # (A create sent for an older plan is compared as any recorded resource instead.)
            interrupted = rec.operation.action if rec.operation else rec.status
            action = "update" if interrupted == "update" and live is not None else "create"
            return StepChange(step.id, kind.name, action, path, (), f"resume: {interrupted}")
        if rec is not None and rec.status in _SETTLED and rec.path != path:
            if kind.left_on_destroy:
                # The old one is its project's: left as it is, the new one taken as any.
                fresh = self._decide(step, kind, res, live, unknown, recorded=False)
                return replace(fresh, previous=rec.path, reason=(
                    f"moves from {rec.path} to {path}; the old one is {kind.left_on_destroy}"))
            return StepChange(step.id, kind.name, "replace", path, (),
                              f"moves from {rec.path} to {path}", previous=rec.path)
        if "${" in path or live is None:
            reason = "deleted outside provision" if rec and rec.status in _SETTLED else ""
            return StepChange(step.id, kind.name, "create", path, (), reason)
        if (rec is None or rec.path != path) and not kind.adopts_live:
            if ownership.is_ours(kind, live, self._ledger.lineage, step.id):
                return StepChange(step.id, kind.name, "noop", path, (), "adopt: made by this plan")
            return StepChange(step.id, kind.name, "create", path, (), "exists, not in the ledger")
        body = _without(res.body, res.secret_fields)
        pending = {k for k, v in body.items() if _holds(v, unknown)}
        changes = [
            c for c in diff({k: v for k, v in body.items() if k not in pending},
                            ownership.unmark(kind, live))
            if c.top != "name"
        ]
        changes += [Change(k, KNOWN_AFTER_APPLY, live.get(k)) for k in sorted(pending)]
        recorded = rec.spec if rec is not None else {}
        for fld in res.secret_fields:
            # None: fingerprinted under another key; unknown is not treated as rotated.
            same = fingerprint_matches(str(res.body[fld]), str(recorded.get(fld)), self._key())
            if same is False:
                changes.append(Change(fld, "(secret changed)", "(secret)"))
        if not changes:
            return StepChange(step.id, kind.name, "noop", path)
        immutable = [c for c in changes if not kind.changes_in_place(c.field)]
        action = "replace" if immutable else "update"
        reason = ""
        if immutable:
            reason = f"{', '.join(c.field for c in immutable)} cannot change in place"
        return StepChange(step.id, kind.name, action, path, tuple(changes), reason)

    def _propagate(
        self: Any, step: Any, kind: Kind, change: StepChange,
        upstream: dict[str, tuple[StepChange, Prediction]], live: dict[str, Any] | None,
    ) -> StepChange:
        """Replace a step that a replaced dependency takes with it (see the module's note): one
        that stays, or a create resumed whose resource is there."""
        resumed = change.reason.startswith("resume") and live is not None
        if change.action not in ("noop", "update") and not (
                change.action == "create" and resumed):
            return change

        for dep, (dep_change, _) in upstream.items():
            if dep_change.action != "replace":
                continue
            # (or, named literally, it lives under the replaced resource's path)
            in_path = (any(r.step == dep for r in find_refs([step.name, *step.scope.values()]))
                       or change.resource.startswith(dep_change.resource.rstrip("/") + "/"))
            names_it = any(
                self._names_resource(dep, r)
                for f, v in step.properties.items() if f not in kind.releases
                for r in find_refs(v) if r.step == dep
            )
            # Google keeps some resources while anything uses them without saying what (a
            # Service Networking connection and the Apigee organization peered through it):
            # what the plan says needs one goes before it.
            held = dep in step.depends_on and bool(kind_named(dep_change.kind).delete_blockers)
            if in_path or names_it or held:
                return StepChange(step.id, kind.name, "replace", change.resource, change.changes,
                                  f"replaced because {dep} is replaced", because=dep)
        return change

    def _names_resource(self: Any, step_id: str, ref: Any) -> bool:
        """Whether a reference's value, as recorded, is the referenced resource's name, path or
        URL: the referring resource then uses it, and Google will not delete it under it."""
        rec = self._ledger.resources.get(step_id)
        if rec is None:
            return False
        if ref.path[:1] and ref.path[0] in kind_named(rec.kind).names_also:
            return True
        try:
            value = output_at(rec.outputs, ref.path)
        except MissingOutput:
            return False
        if not isinstance(value, str) or not value:
            return False
        name = rec.path.rsplit("/", 1)[-1]
        return value == name or same_value(value, rec.path)


def _predict(
    kind: Kind, change: StepChange, res: Resolved, live: dict[str, Any] | None,
    unknown: frozenset[str],
) -> Prediction:
    """A step's outputs after apply, for the steps that refer to them. `unknown`: the
    references its own resolution could not fill in, which its desired values may carry."""
    desired = {k: v for k, v in res.body.items() if k not in kind.secret_fields}
    if change.action == "noop" and live is not None:
        return Prediction({**_outputs(kind, live), "path": res.target.path}, True)
    if change.action == "update" and live is not None:
        known = {k: v for k, v in desired.items()
                 if not any(c.field == k and c.desired == KNOWN_AFTER_APPLY
                            for c in change.changes)}
        return Prediction({**_outputs(kind, live), **known, "path": res.target.path}, False,
                          unknown)
    values = dict(desired)
    if live is not None and not change.previous:
        # Made again at the same path: what Google derives from the path stays.
        values.update({k: live[k] for k in _IDENTITY if k in live})
    values["path"] = res.target.path
    return Prediction(values, False, unknown)


def _outputs(kind: Kind, live: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in live.items() if k not in kind.secret_fields}


def _unreadable(step_id: str, kind: Kind, res: Resolved, exc: Exception) -> StepError:
    return StepError(f"step {step_id} ({kind.name} {res.target.path}): could not read it: {exc}")


def _observed(kind: Kind, res: Resolved, live: dict[str, Any] | None) -> str:
    """A hash of what the plan saw live: whether the resource exists, and the values of the
    fields the step sets (the ones a decision rests on; status fields come and go)."""
    unmarked = ownership.unmark(kind, live) if live is not None else None
    seen = None if unmarked is None else {
        k: unmarked.get(k) for k in res.body if k not in kind.secret_fields}
    text = json.dumps(seen, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _all_new(body: dict[str, Any]) -> tuple[Change, ...]:
    return tuple(Change(k, v, None) for k, v in body.items() if k != "name")


def _holds(value: Any, unknown: set[str]) -> bool:
    if isinstance(value, Unknown):
        return True
    if not unknown:
        return False
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return any(u in text for u in unknown)


def _without(body: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in fields}

