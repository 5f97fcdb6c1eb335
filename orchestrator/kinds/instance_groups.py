"""Managed instance groups and what they need: instance templates, regional managed instance
groups with named ports, their autoscalers, and health checks (architecture B's northbound MIG
bridge, and a passthrough load balancer's backends behind a service attachment)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.operations import OperationRef
from orchestrator.gcp.protos import to_json
from orchestrator.kinds.adapter import ComputeAdapter, Target
from orchestrator.kinds.base import NotReady
from orchestrator.kinds.compute import _compute

# What the plan says on the group but Google keeps on its instance group: "[Output Only] Named
# ports configured on the Instance Groups complementary to this Instance Group Manager"
# (InstanceGroupManager.namedPorts); they are set with regionInstanceGroups.setNamedPorts.
NAMED_PORTS = "namedPorts"


@dataclass(frozen=True)
class ManagedGroupAdapter(ComputeAdapter):
    """A regional managed instance group: inserted and patched without its named ports, which
    `named_ports` then sets on its instance group."""

    @property
    def calls(self) -> Mapping[str, tuple[str, ...]]:
        ports = ("compute.regionInstanceGroups.get", "compute.regionInstanceGroups.setNamedPorts",
                 self.operations)
        calls = dict(super().calls)
        for verb in ("create", "update"):
            calls[verb] = (*calls[verb], *ports)
        return calls

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef:
        return super().create(clients, target, _without_ports(body), request_id)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        rest = _without_ports(body)
        if all(live.get(k) == v for k, v in rest.items()):
            return None  # only the named ports changed: `named_ports` sets them
        return super().update(clients, target, rest, live)

    def named_ports(self, clients: ClientFactory, target: Target,
                    live: dict[str, Any]) -> OperationRef | None:
        """The group's named ports set to the plan's, if they differ (made whenever the engine
        waits for the group, so a run stopped before it finishes it)."""
        if NAMED_PORTS not in target.spec:
            return None  # the plan leaves them to whoever set them
        wanted = target.spec[NAMED_PORTS] or []
        if (live.get(NAMED_PORTS) or []) == wanted:
            return None
        request = {"project": target.scope["project"], "region": target.scope["region"],
                   "instance_group": target.name}
        client = clients.compute("RegionInstanceGroupsClient")
        group = to_json(client.get(request=request))
        op = client.set_named_ports_unary(request={
            **request,
            "region_instance_groups_set_named_ports_request_resource": {
                "named_ports": wanted, "fingerprint": group.get("fingerprint", "")},
        })
        return self.operation(op, target)


def _without_ports(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != NAMED_PORTS}


def _stable(group: dict[str, Any]) -> NotReady | None:
    """A group is ready when "none of the instances in the managed instance group is currently
    undergoing any type of change" (InstanceGroupManagerStatus.isStable)."""
    if (group.get("status") or {}).get("isStable"):
        return None
    actions = group.get("currentActions") or {}
    busy = ", ".join(f"{n} {a}" for a, n in actions.items() if n and a != "none")
    return NotReady(f"instances of {group.get('name')} not yet running ({busy or 'settling'})",
                    underway=True)


_GROUP = _compute(
    "compute.region_instance_group_manager", "InstanceGroupManager", scope="regional",
    adapter=ManagedGroupAdapter,
    mutable=frozenset({
        "description", "instanceTemplate", "versions", "targetSize", "updatePolicy",
        "autoHealingPolicies", NAMED_PORTS,
    }),
    ready=_stable,
    settable=frozenset({NAMED_PORTS}),
    # The group goes with its manager: what uses the group uses the manager.
    names_also=("instanceGroup",),
)


@dataclass(frozen=True)
class HealthCheckAdapter(ComputeAdapter):
    """A health check updated with `update` (PUT), not patch: a JSON merge patch keeps the old
    protocol's sub-object beside a new type's, which Google refuses ("Exactly one of the
    protocol-specific health check fields must be specified, which must match type field",
    HealthCheck.type)."""

    @property
    def calls(self) -> Mapping[str, tuple[str, ...]]:
        return {**super().calls, "update": (f"{self.methods}.update", self.operations)}

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef:
        op = clients.compute(self.client).update_unary(request=self._request(
            target, **{self._name_param: target.name, self.resource_field: self._body(body)}))
        return self.operation(op, target)


_HEALTH_CHECK_FIELDS = frozenset({
    "description", "type", "checkIntervalSec", "timeoutSec", "healthyThreshold",
    "unhealthyThreshold", "tcpHealthCheck", "sslHealthCheck", "httpHealthCheck",
    "httpsHealthCheck", "http2HealthCheck", "grpcHealthCheck", "grpcTlsHealthCheck", "logConfig",
})

KINDS = [
    # "You can't update instance templates after they're created"
    # (https://cloud.google.com/compute/docs/instance-templates): every change replaces one.
    _compute("compute.instance_template", "InstanceTemplate"),
    dataclasses.replace(_GROUP, settle=_GROUP.adapter.named_ports),  # type: ignore[attr-defined]
    _compute(
        "compute.region_autoscaler", "Autoscaler", scope="regional",
        mutable=frozenset({"description", "autoscalingPolicy"}),
    ),
    _compute("compute.health_check", "HealthCheck", mutable=_HEALTH_CHECK_FIELDS,
             adapter=HealthCheckAdapter),
    _compute("compute.region_health_check", "HealthCheck", scope="regional",
             mutable=_HEALTH_CHECK_FIELDS, adapter=HealthCheckAdapter),
]
