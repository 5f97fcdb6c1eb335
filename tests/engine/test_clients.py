"""The Google clients the engine is given: retrying is the engine's alone, and clients built at
once on many threads do not trip over each other."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials

from orchestrator.gcp.clients import ClientFactory
from provision_emulator import Emulator

PROJECT = "clients-project"


def test_google_cloud_clients_leave_retrying_to_the_engine() -> None:
    # compute_v1's own policy retries networks.get on 503 for ten wall-clock minutes. With this
    # seed the first request meets a 503 and the second would not: a client that retried on its
    # own would succeed.
    faults = {"unavailable": 0.5, "methods": ["compute.networks.get"]}
    with Emulator(seed=2, faults=faults) as emu:
        clients = ClientFactory(credentials=AnonymousCredentials(), emulator_url=emu.url)
        with pytest.raises(exceptions.ServiceUnavailable):
            clients.compute("NetworksClient").get(project=PROJECT, network="any")
        assert [r["status"] for r in emu.requests()] == [503]
        with pytest.raises(exceptions.NotFound):
            clients.compute("NetworksClient").get(project=PROJECT, network="any")


def test_clients_built_on_many_threads_at_once_all_work(emulator: Emulator) -> None:
    clients = ClientFactory(credentials=AnonymousCredentials(), emulator_url=emulator.url)
    start = threading.Barrier(8)
    found: list[Any] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            start.wait()
            found.append(clients.compute("NetworksClient"))
            found.append(clients.run_services())
            found.append(clients.discovery("apigee"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(found) == 24
