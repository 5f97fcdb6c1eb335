"""Engine tests: a plan written to a temporary folder, bound to the shared emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import orchestrator
from provision_emulator import Emulator

BASICS = """
name: basics
vars:
  project: eng-project
  region: europe-west1
  range: 10.10.0.0/24
  sources: 10.10.0.0/24
defaults:
  project: ${vars.project}
  region: ${vars.region}
steps:
  - id: vpc
    kind: compute.network
    name: eng-vpc
    properties:
      autoCreateSubnetworks: false
      routingConfig: {routingMode: GLOBAL}
  - id: subnet
    kind: compute.subnetwork
    name: eng-subnet
    properties:
      network: ${vpc.selfLink}
      ipCidrRange: ${vars.range}
  - id: fw
    kind: compute.firewall
    name: eng-allow-internal
    properties:
      network: ${vpc.selfLink}
      direction: INGRESS
      sourceRanges: ["${vars.sources}"]
      allowed: [{IPProtocol: tcp, ports: ["443"]}]
"""


@pytest.fixture
def write_plan(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "plan.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def deploy(
    emulator: Emulator, tmp_path: Path, write_plan: Callable[[str], Path]
) -> Iterator[Callable[..., orchestrator.Deployment]]:
    opened: list[orchestrator.Deployment] = []

    def make(text: str = BASICS, **options: object) -> orchestrator.Deployment:
        options.setdefault("state_dir", tmp_path / ".provision")
        vars_ = options.pop("vars", None)
        dep = orchestrator.load(
            write_plan(text), vars=vars_, emulator=emulator, **options,
        )
        opened.append(dep)
        return dep

    yield make
    for dep in opened:
        dep.close()


def mutating(emulator: Emulator, since: int = 0) -> list[dict]:
    return [r for r in emulator.requests()[since:] if r["mutating"]]
