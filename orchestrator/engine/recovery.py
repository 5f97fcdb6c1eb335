"""import, refresh and rollback: the commands that bring the ledger and the cloud back in
line after something happened outside a clean apply."""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from typing import Any

from orchestrator.engine.events import Event
from orchestrator.engine.results import RunResult, StepFailure
from orchestrator.engine.scheduler import run_graph
from orchestrator.engine.steps import InvalidRequest, Resolved, StepError, kind_named, target_of
from orchestrator.ledger.model import Replaced, ResourceRecord, Run
from orchestrator.plan.errors import did_you_mean


class RecoveryCommands:
    """Mixed into `Engine`: uses its ledger, locking, reading and writing primitives."""

    def _abort(self: Any) -> None:
        """Close the current run as failed, so the ledger never shows it still running (and an
        event reader sees it end)."""
        self._run.finish("failed")
        self._emit(Event("run_finished", message="failed"))
        self._save()

    def _move_record(self: Any, old: str, new: str) -> None:
        """Put the record of step `old` under step `new`, and the records that depended on it
        with it; the resource is not touched."""
        with self._lock:
            rec = self._ledger.resources.pop(old)
            rec.step_id = new
            self._ledger.resources[new] = rec
            for other in self._ledger.resources.values():
                if old in other.depends_on:
                    other.depends_on = sorted({new if d == old else d for d in other.depends_on})

    def move(self: Any, old: str, new: str) -> RunResult:
        """Put the record of step `old` under step `new` (a renamed step): nothing in the cloud
        changes, and the next apply finds the resource as the new step's."""
        with self._locked("ledger mv"):
            self._load()
            records = self._ledger.resources
            if old not in records:
                raise InvalidRequest(
                    f"the ledger records no step {old!r}{did_you_mean(old, records)}")
            if new in records:
                raise InvalidRequest(
                    f"the ledger already records step {new!r} ({records[new].path}): forget it "
                    f"first with provision ledger rm {new}, if that is what you mean"
                )
            if self.plan is not None and new not in {s.id for s in self.plan.steps}:
                ids = [s.id for s in self.plan.steps]
                raise InvalidRequest(f"the plan has no step {new!r}{did_you_mean(new, ids)}")
            return self._ledger_surgery("ledger mv", new, "move", lambda: self._move_record(
                old, new), records[old])

    def forget(self: Any, step_id: str) -> RunResult:
        """Drop a step's record without deleting its resource: provision no longer owns it."""
        with self._locked("ledger rm"):
            self._load()
            records = self._ledger.resources
            if step_id not in records:
                raise InvalidRequest(
                    f"the ledger records no step {step_id!r}{did_you_mean(step_id, records)}")

            def drop() -> None:
                with self._lock:
                    records.pop(step_id)
                    for other in records.values():
                        if step_id in other.depends_on:
                            other.depends_on = [d for d in other.depends_on if d != step_id]

            return self._ledger_surgery("ledger rm", step_id, "forget", drop, records[step_id])

    def _ledger_surgery(
        self: Any, command: str, step_id: str, action: str, change: Any, rec: Any
    ) -> RunResult:
        self._start_run(command, reload=False)
        result = RunResult(command=command, run_id=str(self._run.id))
        change()
        result.actions[step_id] = action
        self._emit(Event("step_finished", step=step_id, kind=rec.kind, action=action,
                         resource=rec.path))
        self._finish(result)
        return result

    def import_resource(self: Any, step_id: str, path: str | None = None) -> RunResult:
        """Put an existing resource under this ledger as `step_id` (read, never changed)."""

        with self._locked("import"):
            self._start_run("import")
            result = RunResult(command="import", run_id=str(self._run.id))
            try:
                self._import(step_id, path, result)
            except Exception as exc:
                self._emit(Event("step_failed", step=step_id, message=self._redact(str(exc))))
                self._abort()
                raise
            self._finish(result)
            return result

    def _import(self: Any, step_id: str, path: str | None, result: RunResult) -> None:
        try:
            step = self.plan.step(step_id)
        except KeyError:
            ids = [s.id for s in self.plan.steps]
            close = difflib.get_close_matches(step_id, ids, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise InvalidRequest(f"the plan has no step {step_id!r}{hint}") from None
        kind, res = self._resolve(step)
        if res.unknown:
            raise StepError(
                f"step {step_id!r} refers to steps not yet in the ledger; import or apply "
                "them first"
            )
        if path is not None and path != res.target.path:
            raise InvalidRequest(
                f"step {step_id!r} describes {res.target.path}, not {path}: change the "
                "step's name or scope to match what you import"
            )
        deadline = self.clock.now() + (step.timeout or kind.timeout)
        live = self._read(kind, res.target, deadline)
        if live is None:
            raise InvalidRequest(
                f"{res.target.path} does not exist: nothing to import. Check the step's name "
                "and scope (or the path given), or run apply to create it")
        owner = next((sid for sid, rec in self._ledger.resources.items()
                      if rec.path == res.target.path and sid != step_id), None)
        if owner is not None:
            # Recorded under another step (renamed in the plan): one owner, the new step.
            if step_id in self._ledger.resources:
                raise InvalidRequest(
                    f"the ledger records {res.target.path} as step {owner!r}, and step "
                    f"{step_id!r} holds another resource: run provision ledger rm {step_id} "
                    "first, if that one is no longer the plan's"
                )
            self._move_record(owner, step_id)
            self._run.act(step_id, f"moved from {owner}", "ok")
        self._record_present(step.id, step.deps, kind, res, live,
                             origin=None if owner else "imported")
        result.actions[step_id] = "import"
        self._emit(Event("step_finished", step=step_id, kind=kind.name, action="import",
                         resource=res.target.path))

    def refresh(self: Any) -> RunResult:
        """Update every recorded resource's outputs from what is live; report the ones gone."""

        with self._locked("refresh"):
            self._start_run("refresh")
            result = RunResult(command="refresh", run_id=str(self._run.id))
            present = [s for s, r in self._ledger.resources.items()
                       if r.status in ("present", "gone")]

            def read(step_id: str) -> None:
                rec = self._ledger.resources[step_id]
                kind = kind_named(rec.kind)
                target = target_of(kind, rec.path, rec.spec)
                try:
                    live = self._read(kind, target, self.clock.now() + kind.timeout)
                except Exception as exc:
                    # A read that failed says nothing of the resource: its record stays as is.
                    with self._lock:
                        result.failures.append(
                            StepFailure(step_id, rec.kind, rec.path, self._redact(str(exc))))
                    self._emit(Event("step_failed", step=step_id, kind=rec.kind,
                                     resource=rec.path, message=str(exc)))
                    raise
                with self._lock:
                    if live is None:
                        rec.status = "gone"
                        rec.error = "deleted outside provision; apply recreates it"
                        result.actions[step_id] = "gone"
                    else:
                        rec.status = "present"
                        rec.outputs = {**{k: v for k, v in live.items()
                                          if k not in kind.secret_fields}, "path": rec.path}
                        rec.error = None
                        result.actions[step_id] = "refresh"
                self._emit(Event("step_finished", step=step_id, kind=rec.kind,
                                 action=result.actions[step_id], resource=rec.path))

            # The reads are independent: they go out side by side, as a plan's do.
            run_graph(present, {s: set() for s in present}, read,
                      parallelism=self.parallelism, workers=self.workers, clock=self.clock)
            self._finish(result)
            return result

    def rollback(self: Any) -> RunResult:
        """Undo the last apply (with the interrupted applies it resumed): delete what
        it created (dependents first), make again what it replaced, put back what it updated
        as recorded before, leave what existed before it. Safe to run again after a rollback
        that stopped halfway: what to restore stays recorded until it is restored."""

        with self._locked("rollback"):
            self._start_run("rollback")
            result = RunResult(command="rollback", run_id=str(self._run.id))
            undone = self._runs_to_undo()
            if not undone:
                self._abort()
                raise StepError("no apply to roll back in this ledger")
            ids = {run.id for run in undone}
            resources = self._ledger.resources
            originals = {s: r.replaced for s, r in resources.items()
                         if r.replaced is not None and r.replaced.run in ids}
            try:
                secrets = {s: self._original_secrets(s, o.record) for s, o in originals.items()}
            except StepError:
                self._abort()
                raise
            created = [s for s, r in resources.items()
                       if r.created_run in ids and not (r.status == "gone" and s in originals)]
            updated = [
                s for s, r in resources.items()
                if r.updated_run in ids and r.previous_spec is not None and s not in created
            ]
            started = self.clock.now()
            self._destroy_steps(list(reversed(created)), result, remade=frozenset(originals))
            if result.ok:
                for step_id in _in_dependency_order(originals):
                    self._undo_step(step_id, "recreate", result,
                                    lambda s: self._recreate(s, originals[s], secrets[s]))
            if result.ok:
                for step_id in updated:
                    self._undo_step(step_id, "restore", result, self._restore_update)
            if result.ok:
                for run in undone:
                    run.result = "rolled_back"
            result.elapsed = self.clock.now() - started
            self._finish(result)
            return result

    def _runs_to_undo(self: Any) -> list[Run]:
        """The last apply not rolled back, and the interrupted applies it resumed (killed, their
        work was finished by it): those right before it, refreshes aside."""
        undone: list[Run] = []
        for run in reversed(self._ledger.runs[:-1]):
            if run.command == "refresh" and undone:
                continue
            if run.command != "apply" or run.result == "rolled_back":
                if undone:
                    break
                continue
            if undone and run.result != "interrupted":
                break
            undone.insert(0, run)
        return undone

    def _original_secrets(
        self: Any, step_id: str, original: ResourceRecord
    ) -> dict[str, str]:
        """The values of the secret fields a replaced resource had, from the plan's secrets
        whose value has the recorded fingerprint. Raises StepError, before anything is
        deleted, when one is no longer to be had."""
        from orchestrator.ledger import fingerprint_matches
        from orchestrator.plan.secrets import SecretError

        kind = kind_named(original.kind)
        values: dict[str, str] = {}
        for field in kind.secret_fields:
            if field not in original.spec:
                continue
            recorded = str(original.spec[field])
            for name in (self.plan.secrets if self.plan is not None else {}):
                try:
                    value = self._secret(name)
                except SecretError:
                    continue
                if fingerprint_matches(value, recorded, self._key()):
                    values[field] = value
                    break
            else:
                raise StepError(
                    f"{step_id}: the last apply replaced {original.path}, and making it again "
                    f"needs the {field} it had, which no secret of the plan holds now (it was "
                    "changed). Nothing was rolled back. Make the plan's secret hold the previous "
                    "value again (its environment variable, file or Secret Manager version) and "
                    "run rollback again."
                )
        return values

    def _undo_step(
        self: Any, step_id: str, action: str, result: RunResult, undo: Callable[[str], str]
    ) -> None:
        """Run `undo(step_id)`, which returns the path it restored, as one step of the run."""
        rec = self._ledger.resources[step_id]
        self._emit(Event("step_started", step=step_id, kind=rec.kind, action=action,
                         resource=rec.path))
        begun = self.clock.now()
        # Names the step its operation polls are reported under.
        threading.current_thread().__dict__["provision_step"] = step_id
        try:
            path = undo(step_id)
            result.actions[step_id] = action
        except Exception as exc:
            self._fail(step_id, exc, result)
        else:
            self._emit(Event(
                "step_finished", step=step_id, kind=rec.kind, action=action, resource=path,
                data={"elapsed": round(self.clock.now() - begun, 3),
                      "polls": self._polls.get(step_id, 0)},
            ))
        finally:
            threading.current_thread().__dict__.pop("provision_step", None)

    def _recreate(self: Any, step_id: str, original: Replaced, secrets: dict[str, str]) -> str:
        """Make a replaced resource again from its recorded spec, and give its record back."""
        from types import SimpleNamespace

        record = original.record
        kind = kind_named(record.kind)
        body = {**record.spec, **secrets}
        fingerprints = {f: record.spec[f] for f in secrets}
        target = target_of(kind, record.path, record.spec)
        res = Resolved(target, body, record.spec, fingerprints, False)
        step = SimpleNamespace(id=step_id, deps=record.depends_on)
        self._create(step, kind, res, self.clock.now() + kind.timeout)
        with self._lock:
            rec = self._ledger.resources[step_id]
            rec.origin, rec.created_run, rec.updated_run = (
                record.origin, record.created_run, record.updated_run)
            rec.previous_spec, rec.replaced = record.previous_spec, record.replaced
        self._save(step_id)
        return record.path

    def _restore_update(self: Any, step_id: str) -> str:
        rec = self._ledger.resources[step_id]
        kind = kind_named(rec.kind)
        # Secrets are recorded as fingerprints only: their fields are left as they are.
        previous = {k: v for k, v in rec.previous_spec.items() if k not in kind.secret_fields}
        target = target_of(kind, rec.path, previous)
        res = Resolved(target, previous, previous, {}, False)
        deadline = self.clock.now() + kind.timeout
        if rec.operation and rec.operation.name:
            # A restore a killed rollback sent: it ends before what is live is compared (a
            # record set's change is refused while another is pending).
            self._await_recorded(kind, rec, deadline)
        live = self._read(kind, target, deadline)
        if live is None:
            raise StepError(f"{rec.path} no longer exists")
        self._update_resource(step_id, rec.depends_on, kind, res, live, deadline,
                              restoring=True)
        with self._lock:
            rec.previous_spec = None
        self._save(step_id)
        return rec.path


def _in_dependency_order(originals: dict[str, Replaced]) -> list[str]:
    """The steps whose originals are made again, each after those of its dependencies."""
    from graphlib import TopologicalSorter

    return list(TopologicalSorter({
        s: [d for d in o.record.depends_on if d in originals] for s, o in originals.items()
    }).static_order())
