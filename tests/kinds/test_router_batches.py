"""A router's interfaces and peers written in batches: every change lands, a change Google
refuses fails only its own step, and an element whose router is gone is deleted as gone."""

from __future__ import annotations

from collections.abc import Callable

import orchestrator
from orchestrator.kinds.adapter import ElementChange, Target
from orchestrator.kinds.vpn import RouterElementAdapter

from .conftest import PROJECT, REGION

PLAN = f"""\
name: router-batches
defaults: {{project: {PROJECT}, region: {REGION}}}
steps:
  - id: net
    kind: compute.network
    name: batch-net
    properties: {{autoCreateSubnetworks: false}}
  - id: router
    kind: compute.router
    name: batch-router
    properties: {{network: "${{net.selfLink}}", bgp: {{asn: 64512}}}}
  - id: iface
    for_each: {{a: 169.254.0.1/30, b: 169.254.0.5/30, c: 169.254.0.9/30, d: BAD}}
    kind: compute.router_interface
    name: iface-${{each.key}}
    router: ${{router.name}}
    properties: {{ipRange: "${{each.value}}"}}
"""


def test_a_refused_change_fails_only_its_own_step(
        deploy: Callable[..., orchestrator.Deployment], emulator) -> None:
    dep = deploy(PLAN.replace("BAD", "10.0.0.1/30"))
    result = dep.apply()
    # The bad change is written last in a batch that others wrote: they land, it alone fails.
    assert [f.step for f in result.failures] == ["iface[d]"]
    assert "link-local" in result.failures[0].message
    assert {s for s, a in result.actions.items() if a == "create"} >= {
        "iface[a]", "iface[b]", "iface[c]"}
    router = dep.clients.discovery("compute").routers().get(
        project=PROJECT, region=REGION, router="batch-router").execute()
    assert sorted(i["name"] for i in router["interfaces"]) == ["iface-a", "iface-b", "iface-c"]
    # The interfaces were ready together: Google refused a write that carried the bad one
    # with others, and each good one was then written alone.
    patches = [r for r in emulator.requests() if r["method"] == "compute.routers.patch"]
    assert [r["status"] for r in patches].count(400) >= 2  # the batch, then d alone


def test_an_element_of_a_router_that_is_gone_is_deleted_as_gone(
        deploy: Callable[..., orchestrator.Deployment]) -> None:
    dep = deploy(PLAN.replace("BAD", "169.254.0.13/30"))
    adapter = RouterElementAdapter("interfaces")
    scope = {"project": PROJECT, "region": REGION, "router": "no-such-router"}
    target = Target("iface-a", scope, f"projects/{PROJECT}/regions/{REGION}/routers/"
                    "no-such-router/interfaces/iface-a")
    assert adapter.write_batch(dep.clients, [ElementChange(adapter, "delete", target, {})],
                               "") is None
    try:
        adapter.write_batch(dep.clients, [ElementChange(adapter, "create", target,
                                                        {"name": "iface-a"})], "")
    except ValueError as exc:
        assert "does not exist" in str(exc)
    else:
        raise AssertionError("a create on a router that is not there must be refused")
