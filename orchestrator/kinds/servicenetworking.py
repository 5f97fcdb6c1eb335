"""Service Networking (private services access for Apigee) and Service Usage kinds.

Service Networking names the consumer network by project *number*
(`projects/123/global/networks/vpc`) and refuses the project id; the plan names projects by
id, so the adapters look the number up in Resource Manager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import OperationRef, invoke
from orchestrator.kinds.adapter import Target
from orchestrator.kinds.aip import operation_of
from orchestrator.kinds.base import MINUTE, Kind

SERVICE = "services/servicenetworking.googleapis.com"
CONNECTION = f"{SERVICE}/connections/servicenetworking-googleapis-com"
PEERED_DNS_DOMAINS = "servicenetworking.services.projects.global.networks.peeredDnsDomains"
_NETWORK = re.compile(r"projects/([^/]+)/global/networks/([^/]+)$")


def project_number(clients: ClientFactory, project: str) -> str:
    if project.isdigit():
        return project
    svc = clients.discovery("cloudresourcemanager")
    found = invoke(svc, "cloudresourcemanager.projects.get", name=f"projects/{project}")
    return found["name"].split("/", 1)[1]


def numbered_network(clients: ClientFactory, network: str) -> str:
    """`projects/NUMBER/global/networks/NAME` for a network URL or path by project id."""
    match = _NETWORK.search(network)
    if match is None:
        raise ValueError(f"{network!r} is not a network (projects/P/global/networks/N)")
    project, name = match.groups()
    return f"projects/{project_number(clients, project)}/global/networks/{name}"


def _not_found_is_none(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        api = from_exception(exc)
        if api is not None and api.not_found:
            return None
        raise


@dataclass(frozen=True)
class ConnectionAdapter:
    """The private services access connection of one consumer network (`properties.network`)."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        # The network is named by its project's number.
        "read": ("cloudresourcemanager.projects.get",
                 "servicenetworking.services.connections.list"),
        **{verb: ("cloudresourcemanager.projects.get",
                  f"servicenetworking.services.connections.{method}",
                  "servicenetworking.operations.get")
           for verb, method in (("create", "create"), ("update", "patch"),
                                ("delete", "deleteConnection"))},
    }

    def _network(self, clients: ClientFactory, target: Target) -> str:
        return numbered_network(clients, target.spec["network"])

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        svc = clients.discovery("servicenetworking")
        network = self._network(clients, target)
        found = _not_found_is_none(lambda: invoke(
            svc, "servicenetworking.services.connections.list", parent=SERVICE, network=network
        ))
        connections = (found or {}).get("connections", [])
        if not connections:
            return None
        # Google answers with the number form; the plan's own spelling of the same network
        # must not read as a change.
        return {**connections[0], "network": target.spec["network"]}

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        svc = clients.discovery("servicenetworking")
        body = {**body, "network": self._network(clients, target)}
        result = invoke(svc, "servicenetworking.services.connections.create", parent=SERVICE,
                        body=body)
        return operation_of("servicenetworking", result)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        svc = clients.discovery("servicenetworking")
        body = {**body, "network": self._network(clients, target)}
        result = invoke(svc, "servicenetworking.services.connections.patch", name=CONNECTION,
                        updateMask="reservedPeeringRanges", body=body)
        return operation_of("servicenetworking", result)

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        svc = clients.discovery("servicenetworking")
        result = invoke(svc, "servicenetworking.services.connections.deleteConnection",
                        name=CONNECTION,
                        body={"consumerNetwork": self._network(clients, target)})
        return operation_of("servicenetworking", result)


@dataclass(frozen=True)
class PeeredDnsDomainAdapter:
    """A DNS suffix the Apigee runtime resolves through the consumer network's private zones."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": ("cloudresourcemanager.projects.get", f"{PEERED_DNS_DOMAINS}.list"),
        **{verb: ("cloudresourcemanager.projects.get", f"{PEERED_DNS_DOMAINS}.{verb}",
                  "servicenetworking.operations.get") for verb in ("create", "delete")},
    }

    def _parent(self, clients: ClientFactory, target: Target) -> str:
        number = project_number(clients, target.scope["project"])
        return f"{SERVICE}/projects/{number}/global/networks/{target.scope['network']}"

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        svc = clients.discovery("servicenetworking")
        method = f"{PEERED_DNS_DOMAINS}.list"
        found = _not_found_is_none(
            lambda: invoke(svc, method, parent=self._parent(clients, target))
        )
        return next(
            (d for d in (found or {}).get("peeredDnsDomains", []) if d["name"] == target.name),
            None,
        )

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        svc = clients.discovery("servicenetworking")
        method = f"{PEERED_DNS_DOMAINS}.create"
        result = invoke(svc, method, parent=self._parent(clients, target), body=body)
        return operation_of("servicenetworking", result)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        raise ValueError("peered DNS domains cannot change in place")

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        svc = clients.discovery("servicenetworking")
        method = f"{PEERED_DNS_DOMAINS}.delete"
        name = f"{self._parent(clients, target)}/peeredDnsDomains/{target.name}"
        return operation_of("servicenetworking", invoke(svc, method, name=name))


@dataclass(frozen=True)
class ServiceAdapter:
    """An enabled Google API. Destroy leaves it enabled (the kind's `left_on_destroy`):
    disabling an API a project shares with other workloads breaks them."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": ("serviceusage.services.get",),
        "create": ("serviceusage.services.enable", "serviceusage.operations.get"),
    }

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        svc = clients.discovery("serviceusage")
        found = invoke(svc, "serviceusage.services.get", name=target.path)
        if found.get("state") != "ENABLED":
            return None
        # Google names the service under its project's number: what service agents' emails
        # are made of (service-NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com).
        return {**found, "projectNumber": str(found.get("parent", "")).rsplit("/", 1)[-1]}

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        svc = clients.discovery("serviceusage")
        result = invoke(svc, "serviceusage.services.enable", name=target.path, body={})
        return operation_of("serviceusage", result)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        return None

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        return None


KINDS = [
    Kind(
        name="servicenetworking.connection",
        api="servicenetworking",
        schema="Connection",
        # One connection per consumer network: the step is named after the network.
        path="projects/{project}/global/networks/{name}/servicenetworking",
        adapter=ConnectionAdapter(),
        name_field="",
        mutable=frozenset({"reservedPeeringRanges"}),
        # Deleting it fails for a while after its last producer (the Apigee organization)
        # is gone; the Terraform provider's 10 minutes are often not enough.
        timeout=30 * MINUTE,
        delete_blockers=("still using this connection",),
        # Google's answer to deleteConnection once the connection is gone (quoted in
        # hashicorp/terraform-provider-google#9105): "Error 400: There is no peering
        # (servicenetworking-googleapis-com) for the network."
        gone_when=("There is no peering",),
        outputs=("path", "peering"),
    ),
    Kind(
        name="servicenetworking.peered_dns_domain",
        api="servicenetworking",
        schema="PeeredDnsDomain",
        path=f"{SERVICE}/projects/{{project}}/global/networks/{{network}}/peeredDnsDomains/{{name}}",
        scope=("project", "network"),
        adapter=PeeredDnsDomainAdapter(),
        mutable=None,
    ),
    Kind(
        name="serviceusage.service",
        api="serviceusage",
        schema="GoogleApiServiceusageV1Service",
        path="projects/{project}/services/{name}",
        name_pattern=r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*\.googleapis\.com$",
        adapter=ServiceAdapter(),
        name_field="",
        mutable=frozenset(),
        outputs=("path", "state", "projectNumber"),
        left_on_destroy="left enabled",
    ),
]
