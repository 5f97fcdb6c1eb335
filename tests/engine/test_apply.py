"""apply / re-apply / update / replace / destroy through the Python API, checked with the real
compute client against the emulator and through the emulator's request log."""

from __future__ import annotations

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from provision_emulator import Emulator

from .conftest import BASICS, mutating


def _client(emulator: Emulator, cls: type) -> object:
    return cls(credentials=AnonymousCredentials(),
               client_options=ClientOptions(api_endpoint=f"{emulator.url}/compute"))


def test_apply_creates_every_resource_wired_as_planned(emulator, deploy) -> None:
    dep = deploy()
    result = dep.apply()
    assert result.ok, result.failures
    assert result.actions == {"vpc": "create", "subnet": "create", "fw": "create"}
    subnet = _client(emulator, compute_v1.SubnetworksClient).get(
        project="eng-project", region="europe-west1", subnetwork="eng-subnet")
    assert subnet.ip_cidr_range == "10.10.0.0/24"
    assert subnet.network.endswith("/projects/eng-project/global/networks/eng-vpc")
    ledger = dep.ledger()
    assert set(ledger.resources) == {"vpc", "subnet", "fw"}
    assert all(r.status == "present" and r.operation is None for r in ledger.resources.values())
    assert ledger.resources["subnet"].depends_on == ["vpc"]
    assert dep.outputs()["subnet"]["selfLink"] == subnet.self_link


def test_compute_operations_are_awaited_with_the_long_poll_wait(emulator, deploy) -> None:
    deploy().apply()
    inserts = [r for r in emulator.requests() if r["method"].endswith(".insert")]
    assert len(inserts) == 3
    counts = emulator.request_counts()
    assert counts.get("compute.globalOperations.wait", 0) + counts.get(
        "compute.regionOperations.wait", 0) >= 3
    assert counts.get("compute.globalOperations.get", 0) == 0


def test_reapply_makes_no_mutating_request(emulator, deploy) -> None:
    dep = deploy()
    assert dep.apply().ok
    before = len(emulator.requests())
    result = dep.apply()
    assert result.ok
    assert set(result.actions.values()) == {"noop"}
    assert mutating(emulator, before) == []
    assert not dep.plan_changes().has_changes


def test_mutable_field_is_updated_in_place(emulator, deploy) -> None:
    assert deploy().apply().ok
    dep = deploy(vars={"sources": "10.20.0.0/16"})
    preview = dep.plan_changes()
    change = next(s for s in preview.steps if s.step == "fw")
    assert change.action == "update"
    assert [c.field for c in change.changes] == ["sourceRanges"]
    before = len(emulator.requests())
    result = dep.apply()
    assert result.actions["fw"] == "update"
    methods = [r["method"] for r in mutating(emulator, before)]
    assert methods == ["compute.firewalls.patch"]
    fw = _client(emulator, compute_v1.FirewallsClient).get(
        project="eng-project", firewall="eng-allow-internal")
    assert list(fw.source_ranges) == ["10.20.0.0/16"]
    record = dep.ledger().resources["fw"]
    assert record.previous_spec["sourceRanges"] == ["10.10.0.0/24"]


def test_immutable_field_is_shown_as_replace_and_done_as_delete_then_create(
    emulator, deploy
) -> None:
    assert deploy().apply().ok
    dep = deploy(vars={"range": "10.30.0.0/24"})
    change = next(s for s in dep.plan_changes().steps if s.step == "subnet")
    assert change.action == "replace"
    assert "ipCidrRange" in change.reason
    before = len(emulator.requests())
    result = dep.apply()
    assert result.ok and result.actions["subnet"] == "replace"
    methods = [r["method"] for r in mutating(emulator, before)]
    assert methods == ["compute.subnetworks.delete", "compute.subnetworks.insert"]
    subnet = _client(emulator, compute_v1.SubnetworksClient).get(
        project="eng-project", region="europe-west1", subnetwork="eng-subnet")
    assert subnet.ip_cidr_range == "10.30.0.0/24"


def test_destroy_empties_emulator_and_ledger_dependents_first(emulator, deploy) -> None:
    dep = deploy()
    assert dep.apply().ok
    before = len(emulator.requests())
    result = dep.destroy()
    assert result.ok
    deletes = [r["method"] for r in mutating(emulator, before)]
    assert deletes.index("compute.networks.delete") > deletes.index("compute.subnetworks.delete")
    assert deletes.index("compute.networks.delete") > deletes.index("compute.firewalls.delete")
    assert dep.ledger().resources == {}
    networks = _client(emulator, compute_v1.NetworksClient).list(project="eng-project")
    assert list(networks) == []


def test_failed_step_stops_only_its_dependents(emulator, deploy) -> None:
    text = BASICS + """
  - id: bad-subnet
    kind: compute.subnetwork
    name: eng-overlap
    properties:
      network: ${vpc.selfLink}
      ipCidrRange: 10.10.0.0/25
    depends_on: [subnet]
  - id: after-bad
    kind: compute.firewall
    name: eng-after-bad
    properties:
      network: ${bad-subnet.network}
      allowed: [{IPProtocol: tcp}]
  - id: independent
    kind: compute.network
    name: eng-other
    properties: {autoCreateSubnetworks: false}
"""
    result = deploy(text).apply()
    assert not result.ok
    assert [f.step for f in result.failures] == ["bad-subnet"]
    assert "10.10.0.0/25" in result.failures[0].message or "conflict" in (
        result.failures[0].message.lower())
    assert result.skipped == {"after-bad": "bad-subnet"}
    assert result.actions["independent"] == "create"


def test_resource_that_exists_outside_the_ledger_is_not_taken_silently(emulator, deploy) -> None:
    assert deploy().apply().ok
    other = deploy(BASICS.replace("name: basics", "name: other-instance"))
    result = other.apply()
    assert not result.ok
    message = result.failures[0].message
    assert "provision import " in message and " vpc projects/eng-project" in message
    assert "does not own" in message


def test_parallelism_one_applies_in_file_order(emulator, deploy) -> None:
    dep = deploy(parallelism=1)
    assert dep.apply().ok
    inserts = [r["method"] for r in emulator.requests() if r["method"].endswith(".insert")]
    assert inserts == [
        "compute.networks.insert", "compute.subnetworks.insert", "compute.firewalls.insert"
    ]


LONE_TUNNEL = """
name: lone-tunnel
vars: {project: eng-project, region: europe-west1}
defaults: {project: "${vars.project}", region: "${vars.region}"}
secrets:
  shared: {env: PROVISION_TEST_TUNNEL_SECRET}
steps:
  - id: vpc
    kind: compute.network
    name: vpc
    properties: {autoCreateSubnetworks: false}
  - id: gateway
    kind: compute.vpn_gateway
    name: gateway
    properties: {network: "${vpc.selfLink}"}
  - id: peer
    kind: compute.vpn_gateway
    name: peer
    properties: {network: "${vpc.selfLink}"}
  - id: router
    kind: compute.router
    name: router
    properties: {network: "${vpc.selfLink}", bgp: {asn: 64512}}
  # No tunnel comes back from the peer: this one never leaves its first handshake.
  - id: tunnel
    kind: compute.vpn_tunnel
    name: tunnel
    timeout: 300
    properties:
      vpnGateway: ${gateway.selfLink}
      vpnGatewayInterface: 0
      peerGcpGateway: ${peer.selfLink}
      router: ${router.selfLink}
      sharedSecret: ${secrets.shared}
"""


@pytest.mark.parametrize("readiness", [True, False])
def test_readiness_false_ends_a_step_with_its_operation(
    deploy, monkeypatch: pytest.MonkeyPatch, readiness: bool
) -> None:
    # The benchmark's baseline waits as the Terraform provider does: for the operation only.
    monkeypatch.setenv("PROVISION_TEST_TUNNEL_SECRET", "not-a-real-secret")
    result = deploy(LONE_TUNNEL, readiness=readiness).apply()
    if readiness:
        assert [f.step for f in result.failures] == ["tunnel"]
        assert "not ready at the step's deadline" in result.failures[0].message
    else:
        assert result.ok and result.actions["tunnel"] == "create"
