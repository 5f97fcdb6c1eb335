"""Kinds declared later need no change here: secret fields and extra scope fields come from the
kind's declaration."""

from __future__ import annotations

import pytest

from orchestrator import kinds
from orchestrator.kinds.adapter import ComputeAdapter
from orchestrator.kinds.base import Kind
from orchestrator.plan import plan_json_schema

TUNNEL = Kind(
    name="compute.vpnTunnel",
    api="compute",
    schema="VpnTunnel",
    path="projects/{project}/regions/{region}/vpnTunnels/{name}",
    adapter=ComputeAdapter("VpnTunnelsClient", "vpn_tunnel_resource", "regional"),
    scope=("project", "region"),
    secret_fields=frozenset({"sharedSecret"}),
)
NAT = Kind(
    name="compute.routerNat",
    api="compute",
    schema="RouterNat",
    path="projects/{project}/regions/{region}/routers/{router}/nats/{name}",
    adapter=ComputeAdapter("RoutersClient", "router_resource", "regional"),
    scope=("project", "region", "router"),
)


@pytest.fixture(autouse=True)
def more_kinds(monkeypatch):
    registry = {**kinds.registry(), TUNNEL.name: TUNNEL, NAT.name: NAT}
    monkeypatch.setattr(kinds, "registry", lambda: registry)


PLAN = """\
name: t
defaults: {project: demo-project, region: europe-west1}
secrets:
  psk: {env: VPN_PSK}
steps:
  - id: tunnel
    kind: compute.vpnTunnel
    name: tunnel
    properties:
      sharedSecret: ${secrets.psk}
      description: tunnel
  - id: nat
    kind: compute.routerNat
    name: nat
    router: my-router
"""


def test_secret_in_a_declared_secret_field(plan):
    loaded = plan.load(PLAN)
    assert loaded.step("tunnel").properties["sharedSecret"] == "${secrets.psk}"
    assert loaded.step("nat").scope == {
        "project": "demo-project",
        "region": "europe-west1",
        "router": "my-router",
    }


def test_secret_in_another_field_of_that_kind(plan):
    diags = plan.errors(PLAN.replace("description: tunnel", "description: ${secrets.psk}"))
    d = plan.one(diags, "step 'tunnel' properties.description")
    assert d.line == plan.line("description:")
    assert "compute.vpnTunnel takes secrets only in: sharedSecret" in d.message


def test_extra_scope_field_is_required_and_typed(plan):
    diags = plan.errors(PLAN.replace("    router: my-router\n", ""))
    assert "no router" in plan.one(diags, "step 'nat'").message
    diags = plan.errors(PLAN.replace("router: my-router", "router: [a]"))
    assert "expected a string" in plan.one(diags, "step 'nat' router").message
    diags = plan.errors(
        PLAN + "    properties: {}\n  - id: x\n    kind: compute.network\n"
        "    name: x\n    router: r\n"
    )
    assert "takes no router" in plan.one(diags, "step 'x' router").message


def test_editor_schema_lists_them():
    schema = plan_json_schema()
    step = schema["$defs"]["StepSpec"]
    assert {"compute.vpnTunnel", "compute.routerNat"} <= set(step["properties"]["kind"]["enum"])
    assert step["properties"]["router"] == {"type": "string"}
    assert "compute.VpnTunnel" in schema["$defs"]
