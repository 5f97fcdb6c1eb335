"""Fixtures shared by every test folder.

`emulator` is the local Google Cloud control plane (`orchestrator.emulator.Emulator`): one server
for the whole session, reset (resources, operations, request log, faults) before each test.
Point a client library at it with `client_options={"api_endpoint": f"{emulator.url}/{api}"}` and
`AnonymousCredentials()` (google-api-python-client wants a trailing slash: `.../{api}/`). Time
runs 1000x fast: a 30-minute Apigee instance takes 1.8 s, a compute network 10 ms.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.emulator import Emulator

TIME_SCALE = 0.001


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    with Emulator(time_scale=TIME_SCALE, seed=0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    emulator_server.reset()
    return emulator_server
