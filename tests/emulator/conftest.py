"""Client fixtures for the emulator's own tests: the real client libraries, pointed at it."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, run_v2
from googleapiclient import discovery as api_discovery

from provision_emulator import Emulator

PROJECT = "proj-one"
REGION = "us-central1"


class Compute:
    """`compute.networks` is a NetworksClient, `compute.region_operations` a
    RegionOperationsClient, ...; `compute.wait(op)` long-polls an operation until DONE."""

    def __init__(self, url: str) -> None:
        self._options = {"api_endpoint": f"{url}/compute"}

    @functools.cache  # noqa: B019 - one client per kind per fixture instance
    def __getattr__(self, name: str) -> Any:
        class_name = "".join(p.title() for p in name.split("_")) + "Client"
        client_class = getattr(compute_v1, class_name)
        return client_class(credentials=AnonymousCredentials(), client_options=self._options)

    def wait(self, op: Any, project: str = PROJECT) -> compute_v1.Operation:
        """Wait on an operation as the orchestrator does: `wait` until DONE (each call is a
        bounded long poll)."""
        while True:
            if op.zone:
                done = self.zone_operations.wait(
                    project=project, zone=op.zone.rsplit("/", 1)[-1], operation=op.name
                )
            elif op.region:
                done = self.region_operations.wait(
                    project=project, region=op.region.rsplit("/", 1)[-1], operation=op.name
                )
            else:
                done = self.global_operations.wait(project=project, operation=op.name)
            if done.status == compute_v1.Operation.Status.DONE:
                return done
            op = done


@pytest.fixture
def compute(emulator: Emulator) -> Compute:
    return Compute(emulator.url)


@pytest.fixture
def run_services(emulator: Emulator) -> run_v2.ServicesClient:
    return run_v2.ServicesClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": f"{emulator.url}/run"},
    )


@functools.cache
def _discovery_client(url: str, api: str, version: str) -> Any:
    return api_discovery.build(
        api,
        version,
        credentials=AnonymousCredentials(),
        static_discovery=True,
        client_options={"api_endpoint": f"{url}/{api}/"},
    )


@pytest.fixture
def google_api(emulator: Emulator) -> Any:
    """google_api("iam", "v1") -> a google-api-python-client resource for the emulator."""
    return functools.partial(_discovery_client, emulator.url)
