"""What every architecture test does: apply a reference plan on its own emulator, then check
that it is all there, re-applies without a mutating request and destroys leaving nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

import orchestrator
from google_facts import permissions
from provision_emulator import Emulator


@contextmanager
def applied(plan: Path, state_dir: Path) -> Iterator[tuple[Emulator, Any]]:
    """The plan applied on a fresh emulator, with Google's durations; yields (emulator,
    deployment)."""
    with Emulator() as emu:
        dep = orchestrator.load(plan, emulator=emu,
                                state_dir=state_dir / ".provision")
        result = dep.apply()
        assert result.ok, [(f.step, f.message) for f in result.failures]
        check_every_request_names_provision(emu)
        check_every_method_called_has_a_known_permission(emu)
        yield emu, dep
        dep.close()


def check_every_request_names_provision(emu: Emulator) -> None:
    """Every client the engine builds says who calls, as Google's logs show it."""
    agents = {r["userAgent"] for r in emu.requests()}
    assert agents and all(f"provision/{orchestrator.__version__}" in a.split() for a in agents), (
        agents)


def check_every_method_called_has_a_known_permission(emu: Emulator) -> None:
    """The permission table covers whatever the engine calls: the emulator's IAM model and
    the permission check both read it (a method missing from it raises KeyError)."""
    for method in {r["method"] for r in emu.requests()}:
        permissions.required(method)


def compute(emu: Emulator, client: str) -> Any:
    """A google-cloud-compute client by class name, pointed at the emulator."""
    return getattr(compute_v1, client)(
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=f"{emu.url}/compute"),
    )


def leftovers(emu: Emulator, projects: tuple[str, ...]) -> list[str]:
    """What remains in the plan's projects. APIs stay enabled by design (serviceusage); what
    Google made in Apigee's tenant project is Google's."""
    return [path for api, resources in emu.dump()["resources"].items() if api != "serviceusage"
            for path in resources if any(p in path for p in projects)]


def check_every_step_is_present(dep: Any, steps: int) -> None:
    ledger = dep.ledger()
    assert len(ledger.resources) == len(dep.plan.steps) == steps
    assert {r.status for r in ledger.resources.values()} == {"present"}


def check_reapply_makes_no_mutating_request(emu: Emulator, dep: Any) -> None:
    before = len(emu.requests())
    result = dep.apply()
    assert result.ok and set(result.actions.values()) == {"noop"}
    assert [r["method"] for r in emu.requests()[before:] if r["mutating"]] == []


def check_destroy_leaves_nothing(emu: Emulator, dep: Any, projects: tuple[str, ...]) -> None:
    result = dep.destroy()
    assert result.ok, [(f.step, f.message) for f in result.failures]
    assert dep.ledger().resources == {}
    assert leftovers(emu, projects) == []
