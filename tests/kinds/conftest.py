"""Kind tests: a plan applied to the shared emulator through the Python API, checked with the
real client libraries (as a user would look at their cloud) and the emulator's request log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import dns, run_v2
from googleapiclient import discovery as api_discovery

import orchestrator
from google_facts import discovery
from provision_emulator import Emulator

PROJECT = "backend-project"
REGION = "europe-west1"


@pytest.fixture
def deploy(emulator: Emulator, tmp_path: Path) -> Iterator[Callable[..., orchestrator.Deployment]]:
    """deploy(plan_text, vars=...) -> a Deployment on the emulator; every call shares one
    ledger, so a second call with changed text is the same deployment with a changed plan."""
    opened: list[orchestrator.Deployment] = []

    def make(text: str, **options: object) -> orchestrator.Deployment:
        path = tmp_path / "plan.yaml"
        path.write_text(text)
        options.setdefault("state_dir", tmp_path / ".provision")
        dep = orchestrator.load(path, emulator=emulator, **options)
        opened.append(dep)
        return dep

    yield make
    for dep in opened:
        dep.close()


def mutating(emulator: Emulator, since: int = 0) -> list[str]:
    """The methods of the mutating requests made since `since`."""
    return [r["method"] for r in emulator.requests()[since:] if r["mutating"]]


@pytest.fixture
def run_services(emulator: Emulator) -> run_v2.ServicesClient:
    return run_v2.ServicesClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": f"{emulator.url}/run"},
    )


def discovery_client(emulator: Emulator, api: str) -> Any:
    service_path = discovery.document(api).get("servicePath", "")
    return api_discovery.build(
        api, discovery.API_VERSIONS[api], credentials=AnonymousCredentials(),
        static_discovery=True,
        client_options={"api_endpoint": f"{emulator.url}/{api}/{service_path}"},
    )


@pytest.fixture
def iam(emulator: Emulator) -> Any:
    return discovery_client(emulator, "iam")


@pytest.fixture
def dns_api(emulator: Emulator) -> Any:
    """The dns v1 discovery client: zones as Google's JSON, private and peering fields included."""
    return discovery_client(emulator, "dns")


@pytest.fixture
def dns_client(emulator: Emulator) -> dns.Client:
    return dns.Client(
        project=PROJECT, credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"{emulator.url}/dns"},
    )
