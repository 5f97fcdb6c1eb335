"""Fixtures shared by every test folder.

`emulator` is the local Google Cloud control plane (`provision_emulator.Emulator`): one server
for the whole session, reset (resources, operations, request log, faults) before each test.
Point a client library at it with `client_options={"api_endpoint": f"{emulator.url}/{api}"}` and
`AnonymousCredentials()` (google-api-python-client wants a trailing slash: `.../{api}/`), or give it
to `orchestrator.load(plan, emulator=emulator)`. Its clock is virtual: simulated time moves only
when everything working on it waits (an operation's long poll, the engine's sleeps), so Google's
durations cost no real time and CPU load cannot spend simulated time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provision_emulator import Emulator


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    with Emulator(seed=0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    emulator_server.reset()
    return emulator_server
