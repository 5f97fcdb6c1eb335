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
from orchestrator.emulator.operations import DURATIONS

TIME_SCALE = 0.001

# For tests of wiring and recovery rather than of durations: Apigee's operations (one at a time
# per organization, minutes each) cut to 30 s and Service Networking's release lag to a minute,
# at a time scale of 0.005. A reference plan's apply and destroy then take seconds, and a second
# of stalled CPU on a loaded machine spends 200 simulated seconds of a step's deadline, not the
# 1,000 it would at 0.001.
QUICK_DURATIONS = {
    **{key: min(value, 30.0) for key, value in DURATIONS.items() if key.startswith("apigee")},
    "servicenetworking.producerRelease": 60.0,
}
QUICK_SCALE = 0.005


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    with Emulator(time_scale=TIME_SCALE, seed=0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    emulator_server.reset()
    return emulator_server
