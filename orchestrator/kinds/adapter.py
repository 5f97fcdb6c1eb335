"""How a kind's API calls are made: one adapter per API family.

An adapter turns the engine's four verbs (read, create, update, delete) into one API's calls.
Bodies and resources are plain JSON dicts in the API's own field names, whatever the client
library uses underneath, so the engine and the ledger see one shape everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import OperationRef
from orchestrator.gcp.protos import from_json, to_json


@dataclass(frozen=True)
class Target:
    """One resource as a step resolves it: its name, scope fields and resource path, and its
    properties (on destroy, the recorded ones: some resources, like an IAM member or a DNS
    record, are named by their properties as much as by their path)."""

    name: str
    scope: dict[str, str]
    path: str
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ElementChange:
    """One step's change to an element of a parent that its adapter writes in batches
    (`write_batch`: a router's interfaces and peers)."""

    adapter: Any
    action: str  # "create", "update" or "delete"
    target: Target
    body: dict[str, Any]


class Adapter(Protocol):
    # The discovery ids of the methods each verb calls ("read", "create", "update", "delete";
    # an operation's wait included): what the caller's permissions are checked against.
    @property
    def calls(self) -> Mapping[str, tuple[str, ...]]: ...

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None: ...

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None: ...

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None: ...

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None: ...


@dataclass(frozen=True)
class ComputeAdapter:
    """A compute resource through its google-cloud-compute client.

    client: the client class ("NetworksClient").
    resource_field: the insert request's body argument ("network_resource"); the get/delete
        argument that names the resource is the same without "_resource" ("network").
    message: the compute_v1 message class of the body ("Network").
    """

    client: str
    resource_field: str
    message: str
    operations: str = "compute.globalOperations.wait"  # the scope's, where its operations go

    @property
    def methods(self) -> str:
        """The discovery id prefix of the client's methods ("compute.regionAutoscalers")."""
        collection = self.client.removesuffix("Client")
        return f"compute.{collection[0].lower()}{collection[1:]}"

    @property
    def calls(self) -> Mapping[str, tuple[str, ...]]:
        method = self.methods
        return {
            "read": (f"{method}.get",),
            "create": (f"{method}.insert", self.operations),
            "update": (f"{method}.patch", self.operations),
            "delete": (f"{method}.delete", self.operations),
        }

    @property
    def _name_param(self) -> str:
        return self.resource_field.removesuffix("_resource")

    def _request(self, target: Target, **extra: Any) -> dict[str, Any]:
        request = {k: v for k, v in target.scope.items() if k in ("project", "region", "zone")}
        request.update(extra)
        return request

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        client = clients.compute(self.client)
        try:
            resource = client.get(request=self._request(target, **{self._name_param: target.name}))
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise
        return to_json(resource)

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef:
        client = clients.compute(self.client)
        op = client.insert_unary(
            request=self._request(
                target, **{self.resource_field: self._body(body)}, request_id=request_id
            )
        )
        return self.operation(op, target)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef:
        client = clients.compute(self.client)
        # Compute rejects a patch without the current fingerprint (optimistic concurrency).
        if "fingerprint" in live:
            body = {**body, "fingerprint": live["fingerprint"]}
        op = client.patch_unary(
            request=self._request(
                target,
                **{self._name_param: target.name, self.resource_field: self._body(body)},
            )
        )
        return self.operation(op, target)

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef:
        client = clients.compute(self.client)
        op = client.delete_unary(request=self._request(target, **{self._name_param: target.name}))
        return self.operation(op, target)

    def _body(self, body: dict[str, Any]) -> Any:
        from google.cloud import compute_v1

        return from_json(getattr(compute_v1, self.message), body)

    @staticmethod
    def operation(op: Any, target: Target) -> OperationRef:
        """The ledger's record of a compute Operation some call returned."""
        region = op.region.rsplit("/", 1)[-1] if op.region else ""
        zone = op.zone.rsplit("/", 1)[-1] if op.zone else ""
        return OperationRef(
            type="compute",
            api="compute",
            name=op.name,
            project=target.scope["project"],
            region=region,
            zone=zone,
        )
