"""The Python API: no global state, usable inside a running event loop, resilient to Google's
transient errors."""

from __future__ import annotations

import asyncio

from provision_emulator import Emulator

from .conftest import BASICS


def test_two_deployments_run_in_one_process_at_once(emulator: Emulator, deploy) -> None:
    first = deploy(BASICS)
    second = deploy(
        BASICS.replace("name: basics", "name: second").replace("eng-", "two-"),
    )

    async def both() -> list:
        return await asyncio.gather(first.aapply(), second.aapply())

    results = asyncio.run(both())
    assert all(r.ok for r in results), [r.failures for r in results]
    assert set(first.outputs()) == set(second.outputs()) == {"vpc", "subnet", "fw"}
    assert first.outputs()["vpc"]["name"] == "eng-vpc"
    assert second.outputs()["vpc"]["name"] == "two-vpc"


def test_sync_calls_work_inside_a_running_event_loop(emulator: Emulator, deploy) -> None:
    # As in Jupyter: the caller's thread already runs a loop.
    dep = deploy()

    async def in_loop() -> bool:
        return dep.apply().ok and dep.destroy().ok

    assert asyncio.run(in_loop())


def test_events_reach_the_callback(emulator: Emulator, deploy) -> None:
    seen = []
    dep = deploy(on_event=seen.append)
    dep.apply()
    types = [e.type for e in seen]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert {e.step for e in seen if e.type == "step_finished"} == {"vpc", "subnet", "fw"}
    assert any(e.type == "step_progress" for e in seen)


def test_apply_and_destroy_through_throttling_and_unavailability(
    emulator: Emulator, deploy
) -> None:
    emulator.set_faults(rate_limit=0.2, unavailable=0.1, quota=0.05)
    dep = deploy()
    result = dep.apply()
    assert result.ok, result.failures
    statuses = {r["status"] for r in emulator.requests()}
    assert {429, 503} <= statuses  # the faults did happen, and were absorbed
    assert dep.apply().ok
    assert dep.destroy().ok
    assert dep.ledger().resources == {}


def test_step_deadline_ends_with_a_clear_failure(emulator: Emulator, deploy) -> None:
    emulator.set_faults(unavailable=1.0, methods=["compute.networks.insert"])
    text = BASICS.replace("    name: eng-vpc\n", "    name: eng-vpc\n    timeout: 30s\n")
    result = deploy(text).apply()
    assert [f.step for f in result.failures] == ["vpc"]
    assert "deadline" in result.failures[0].message
    assert "503" in result.failures[0].message
    assert set(result.skipped) == {"subnet", "fw"}


def test_a_deployment_builds_its_clients_once_not_for_every_run(
    emulator: Emulator, deploy, monkeypatch
) -> None:
    from google.auth.transport.requests import AuthorizedSession

    # Every REST client (google-cloud-compute's here) opens one authorized session as it is
    # built: counting them counts the clients built.
    opened: list[object] = []
    open_session = AuthorizedSession.__init__

    def counting(self: AuthorizedSession, *args: object, **kwargs: object) -> None:
        opened.append(self)
        open_session(self, *args, **kwargs)

    monkeypatch.setattr(AuthorizedSession, "__init__", counting)
    # One step thread: with more, a run may start one more thread (and its clients) while
    # another is between two steps.
    dep = deploy(BASICS, parallelism=1)
    assert dep.apply().ok
    built = len(opened)
    assert built >= 5  # networks, subnetworks, firewalls, and their operations'
    assert dep.plan_changes().steps
    assert dep.apply().ok
    assert dep.destroy().ok
    assert dep.apply().ok
    assert len(opened) == built
