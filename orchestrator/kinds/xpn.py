"""Shared VPC: a host project, the service projects attached to it, and who may use its
subnetworks (roles/compute.networkUser on a subnetwork).

Compute calls these XPN. A host's status and its attached projects are properties of the host
project, read and changed through `projects.*` methods; a step names the project it enables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.operations import OperationRef
from orchestrator.gcp.protos import from_json, to_json
from orchestrator.kinds.adapter import Target
from orchestrator.kinds.base import MINUTE, Kind
from orchestrator.kinds.iam_member import RegionalComputePolicyMemberAdapter
from orchestrator.kinds.servicenetworking import project_number

PROJECT_ID = r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$"
SUBNET = "projects/{project}/regions/{region}/subnetworks/{name}"


def _projects(clients: ClientFactory) -> Any:
    return clients.compute("ProjectsClient")


def _operation(op: Any, project: str) -> OperationRef:
    """XPN methods answer with a global operation of the host project."""
    return OperationRef(type="compute", api="compute", name=op.name, project=project)


@dataclass(frozen=True)
class SharedVpcHostAdapter:
    """The step's name is the project that becomes a host. Destroy disables it, which Google
    refuses while service projects are attached: their steps depend on this one and go first."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": ("compute.projects.get",),
        "create": ("compute.projects.enableXpnHost", "compute.globalOperations.wait"),
        "delete": ("compute.projects.disableXpnHost", "compute.globalOperations.wait"),
    }

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        project = to_json(_projects(clients).get(project=target.name))
        if project.get("xpnProjectStatus") != "HOST":
            return None
        return {"id": target.name, "type": "PROJECT"}

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef:
        op = _projects(clients).enable_xpn_host_unary(
            request={"project": target.name, "request_id": request_id}
        )
        return _operation(op, target.name)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        raise ValueError("a shared VPC host has nothing to change in place")

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef:
        return _operation(_projects(clients).disable_xpn_host_unary(project=target.name),
                          target.name)


@dataclass(frozen=True)
class ServiceProjectAdapter:
    """The step's name is the service project; its `project` the host. Read back with the
    service project's number, which its service agents' addresses are made of
    (`NUMBER@cloudservices.gserviceaccount.com` needs roles/compute.networkUser)."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": ("compute.projects.getXpnResources", "cloudresourcemanager.projects.get"),
        "create": ("compute.projects.enableXpnResource", "compute.globalOperations.wait"),
        "delete": ("compute.projects.disableXpnResource", "compute.globalOperations.wait"),
    }

    def _resource(self, body: dict[str, Any]) -> Any:
        from google.cloud import compute_v1

        return {"xpn_resource": from_json(compute_v1.XpnResourceId, {"type": "PROJECT", **body})}

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        attached = _projects(clients).get_xpn_resources(project=target.scope["project"])
        for resource in attached:
            found = to_json(resource)
            if found.get("id") == target.name and found.get("type") == "PROJECT":
                return {**found, "projectNumber": project_number(clients, target.name)}
        return None

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef:
        op = _projects(clients).enable_xpn_resource_unary(request={
            "project": target.scope["project"],
            "request_id": request_id,
            "projects_enable_xpn_resource_request_resource": self._resource(body),
        })
        return _operation(op, target.scope["project"])

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        raise ValueError("a service project's attachment cannot change in place")

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef:
        op = _projects(clients).disable_xpn_resource_unary(
            project=target.scope["project"],
            projects_disable_xpn_resource_request_resource=self._resource({"id": target.name}),
        )
        return _operation(op, target.scope["project"])


KINDS = [
    Kind(
        name="compute.shared_vpc_host",
        api="compute",
        # Shared VPC's own name for a project: {id, type: PROJECT}.
        schema="XpnResourceId",
        path="projects/{name}/xpnHost",
        scope=(),
        adapter=SharedVpcHostAdapter(),
        name_pattern=PROJECT_ID,
        name_field="id",
    ),
    Kind(
        name="compute.shared_vpc_service_project",
        api="compute",
        schema="XpnResourceId",
        path="projects/{project}/xpnResources/{name}",
        adapter=ServiceProjectAdapter(),
        name_pattern=PROJECT_ID,
        name_field="id",
        outputs=("path", "projectNumber"),
    ),
    Kind(
        name="compute.subnetwork_iam_member",
        api="compute",
        # IAM's own one-member-of-one-role shape: {role, member}.
        schema_api="iam",
        schema="BindingDelta",
        # The step is named by its subnetwork; role and member complete the path.
        path=SUBNET + "/iam/{role}/{member}",
        scope=("project", "region"),
        adapter=RegionalComputePolicyMemberAdapter("SubnetworksClient", SUBNET,
                                                   "compute.subnetworks"),
        name_field="",
        # One policy writer per subnetwork in this run; the etag guards against everyone else.
        serialize="compute/" + SUBNET,
        timeout=5 * MINUTE,
    ),
]
