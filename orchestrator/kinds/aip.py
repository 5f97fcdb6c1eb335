"""Resources of APIs described by discovery documents and following Google's resource-oriented
conventions (AIP): create under a parent, get/patch/delete by full name, long-running
operations as google.longrunning.Operation. Called through google-api-python-client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import OperationRef, invoke, operation_methods
from orchestrator.kinds.adapter import Target


@dataclass(frozen=True)
class AipAdapter:
    """collection: the discovery id prefix of the resource's methods
        ("apigee.organizations.envgroups"); its create/get/delete/patch are used.
    create_params: the create call's parameters, as templates over {name}, {path}, {parent}
        (the path without its last two segments) and the scope fields.
    update_style: "patch" (with an updateMask of the fields the plan sets), "update" (a full PUT of
        the live resource with the plan's fields over it), or None.
    match: for resources Google names itself (attachments), the property that identifies one
        among its parent's list; `Target.path` is then the plan's own handle for it.
    delete_params: extra parameters of the delete call.
    waits: whether its mutations answer with long-running operations, waited for with the
        API's operations methods.
    """

    collection: str
    create_params: Mapping[str, str] = field(default_factory=lambda: {"parent": "{parent}"})
    update_style: str | None = "patch"
    match: str | None = None
    delete_params: Mapping[str, str] = field(default_factory=dict)
    waits: bool = True

    @property
    def api(self) -> str:
        return self.collection.split(".", 1)[0]

    @property
    def calls(self) -> Mapping[str, tuple[str, ...]]:
        waits = tuple(m for m in operation_methods(self.api) if m) if self.waits else ()
        methods = self.collection
        found = (f"{methods}.list",) if self.match else ()
        update = (f"{methods}.{self.update_style}", *waits) if self.update_style else ()
        return {
            "read": found or (f"{methods}.get",),
            "create": (f"{methods}.create", *waits),
            "update": update,
            "delete": (*found, f"{methods}.delete", *waits),
        }

    def _service(self, clients: ClientFactory) -> Any:
        return clients.discovery(self.api)

    def _fill(self, templates: Mapping[str, str], target: Target) -> dict[str, str]:
        parent = target.path.rsplit("/", 2)[0]
        values = {**target.scope, "name": target.name, "path": target.path, "parent": parent}
        return {key: tmpl.format(**values) for key, tmpl in templates.items()}

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        svc = self._service(clients)
        try:
            if self.match is None:
                return invoke(svc, f"{self.collection}.get", name=target.path)
            return self._find(svc, target)
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise

    def _find(self, svc: Any, target: Target) -> dict[str, Any] | None:
        assert self.match is not None
        parent = target.path.rsplit("/", 2)[0]
        wanted = target.spec.get(self.match)
        token = None
        while True:
            page = invoke(svc, f"{self.collection}.list", parent=parent,
                          **({"pageToken": token} if token else {}))
            items = next((v for v in page.values() if isinstance(v, list)), [])
            for item in items:
                if item.get(self.match) == wanted:
                    return item
            token = page.get("nextPageToken")
            if not token:
                return None

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        svc = self._service(clients)
        result = invoke(svc, f"{self.collection}.create",
                        **self._fill(self.create_params, target), body=body)
        return operation_of(self.api, result)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        svc = self._service(clients)
        name = live.get("name", target.path) if self.match else target.path
        if self.update_style == "patch":
            mask = ",".join(sorted(k for k in body if k != "name"))
            result = invoke(svc, f"{self.collection}.patch", name=name, updateMask=mask,
                            body=body)
        elif self.update_style == "update":
            result = invoke(svc, f"{self.collection}.update", name=name, body={**live, **body})
        else:
            raise ValueError(f"{self.collection} cannot be updated in place")
        return operation_of(self.api, result)

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        svc = self._service(clients)
        name = target.path
        if self.match is not None:
            live = self._find(svc, target)
            if live is None:
                return None
            # Google names these itself, and answers with the last segment only.
            name = f"{target.path.rsplit('/', 1)[0]}/{live['name'].rsplit('/', 1)[-1]}"
        result = invoke(svc, f"{self.collection}.delete", name=name,
                        **self._fill(self.delete_params, target))
        return operation_of(self.api, result)


def operation_of(api: str, result: Any) -> OperationRef | None:
    """The google.longrunning.Operation a call returned, or None for a synchronous answer."""
    if isinstance(result, dict) and "/operations/" in f"/{result.get('name', '')}" and (
        "done" in result or "metadata" in result
    ):
        if result.get("done") and "error" not in result:
            return None
        return OperationRef(type="lro", api=api, name=result["name"])
    return None
