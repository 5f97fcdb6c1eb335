"""The virtual clock: time stands still while any participant works, and jumps to the next moment
someone waits for once all of them wait. Real time and CPU load play no part."""

from __future__ import annotations

import threading
import time

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from orchestrator.gcp.clock import LocalBackend, RemoteBackend, SimulatedClock
from orchestrator.gcp.credentials import EmulatorCredentials
from provision_emulator import Emulator
from provision_emulator.clock import VirtualClock

START = 1_800_000_000.0


def test_with_nobody_working_a_sleep_jumps_to_its_end() -> None:
    clock = VirtualClock(START)
    assert clock.sleep_until(START + 3600) == START + 3600
    assert clock.now() == START + 3600


def test_time_stands_still_while_a_token_is_held() -> None:
    clock = VirtualClock(START)
    worker = clock.session()
    clock.hold(worker)
    woke: list[float] = []
    sleeper = threading.Thread(target=lambda: woke.append(clock.sleep_until(START + 60)))
    sleeper.start()
    sleeper.join(0.3)  # any amount of real time: the clock does not move
    assert sleeper.is_alive() and clock.now() == START and woke == []
    clock.release(worker)
    sleeper.join()
    assert woke == [START + 60]


def test_participants_wake_in_time_order_each_with_its_token() -> None:
    clock = VirtualClock(START)
    a, b = clock.session(), clock.session()
    log: list[tuple[str, float]] = []

    def run(session: str, naps: list[float]) -> None:
        for nap in naps:
            clock.sleep_until(clock.now() + nap, session)
            log.append((session, clock.now()))
            time.sleep(0.01)  # work in real time, with the token: nobody else moves meanwhile
        clock.release(session)

    clock.hold(a)
    clock.hold(b)
    threads = [threading.Thread(target=run, args=(a, [10, 10, 10])),
               threading.Thread(target=run, args=(b, [15, 15]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [t for _, t in log] == sorted(t for _, t in log)
    assert sorted(log) == [(a, START + 10), (a, START + 20), (a, START + 30),
                           (b, START + 15), (b, START + 30)]
    assert clock.busy() == 0


def test_cpu_work_spends_no_simulated_time() -> None:
    """A participant that burns CPU between its sleeps: the clock moves by its sleeps alone."""
    clock = SimulatedClock(LocalBackend(VirtualClock(START)))
    with clock.busy():
        for _ in range(5):
            spin = time.monotonic() + 0.05
            while time.monotonic() < spin:
                pass
            clock.sleep(600)
    assert clock.now() == START + 3000


def test_a_long_poll_gives_the_callers_token_back_while_parked() -> None:
    """An engine thread holds a token and waits on an operation with compute's long-poll `wait`:
    the emulator parks the request and gives the token back, so the operation can end."""
    with Emulator(start=START, durations={"compute.networks": 3 * 3600}) as emu:
        clock = SimulatedClock(LocalBackend(emu.clock))
        options = {"api_endpoint": f"{emu.url}/compute"}
        creds = EmulatorCredentials(clock.header)
        networks = compute_v1.NetworksClient(credentials=creds, client_options=options)
        operations = compute_v1.GlobalOperationsClient(credentials=creds, client_options=options)
        with clock.busy():
            op = networks.insert(project="clock-project", network_resource={"name": "n1"})
            polls = 0
            while True:
                done = operations.wait(project="clock-project", operation=op.name)
                polls += 1
                if done.status == compute_v1.Operation.Status.DONE:
                    break
        # Each long poll holds 120 s at most: 90 of them for three hours, to the second.
        assert polls == 90 and clock.now() == START + 3 * 3600
        requests = emu.requests()
        assert [r["time"] for r in requests][-1] == START + 3 * 3600 - 120


def test_a_remote_session_ends_with_its_connection() -> None:
    """A client process that dies holding tokens must not stop the clock for good: its
    session's tokens go when the connection that keeps the session open closes."""
    with Emulator(start=START) as emu:
        remote = RemoteBackend(emu.url)
        remote.hold()
        remote.hold()
        assert emu.clock.busy() == 2
        woke = threading.Event()
        sleeper = threading.Thread(
            target=lambda: (emu.clock.sleep_until(START + 30), woke.set())
        )
        sleeper.start()
        assert not woke.wait(0.2) and emu.clock.now() == START
        remote.close()  # as the kernel does for a killed process
        sleeper.join(10)
        assert woke.is_set() and emu.clock.now() == START + 30 and emu.clock.busy() == 0


def test_a_remote_client_moves_the_clock_by_its_sleeps() -> None:
    with Emulator(start=START) as emu:
        clock = SimulatedClock(RemoteBackend(emu.url))
        with clock.busy():
            assert emu.clock.busy() == 1
            clock.sleep(45)
            assert clock.now() == START + 45 == emu.clock.now()
        assert emu.clock.busy() == 0
        clock.close()


def test_the_clock_endpoint_says_which_clock_it_is() -> None:
    import json
    import urllib.request

    with Emulator(start=START) as emu:
        described = json.load(urllib.request.urlopen(f"{emu.url}/_emulator/clock"))
        assert described == {"mode": "virtual", "now": START, "busy": 0, "waiting": 0}
    with Emulator(time_scale=0.01) as emu:
        described = json.load(urllib.request.urlopen(f"{emu.url}/_emulator/clock"))
        assert described["mode"] == "scaled" and described["scale"] == 0.01


def test_releasing_a_token_never_held_is_refused() -> None:
    clock = VirtualClock(START)
    with pytest.raises(RuntimeError, match="does not hold"):
        clock.release(clock.session())


def test_the_state_file_keeps_the_clock(tmp_path) -> None:
    state = tmp_path / "cloud.json"
    with Emulator(start=START, state_file=state,
                  durations={"compute.networks": 600}) as emu:
        client = compute_v1.NetworksClient(
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": f"{emu.url}/compute"},
        )
        client.insert(project="clock-project", network_resource={"name": "n1"})
        emu.skip(100)
    with Emulator(state_file=state) as emu:
        # The insert's operation is where it was: 500 simulated seconds from its end.
        assert emu.clock.now() == START + 100
        assert emu.dump()["resources"].get("compute", {}) == {}
        emu.skip(500)
        assert "projects/clock-project/global/networks/n1" in emu.dump()["resources"]["compute"]
