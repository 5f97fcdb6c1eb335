"""Cloud Run kinds, through google-cloud-run v2 (REST): services, and one member of a service's
IAM policy (an Apigee proxy's service account as roles/run.invoker)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from google_facts import discovery
from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import OperationRef
from orchestrator.gcp.protos import from_json, to_json
from orchestrator.kinds.adapter import Target
from orchestrator.kinds.base import MINUTE, Kind
from orchestrator.kinds.iam_member import PolicyMemberAdapter

SERVICE = "projects/{project}/locations/{region}/services/{name}"
SCHEMA = "GoogleCloudRunV2Service"
# Cloud Run's service names: RFC 1035, at most 49 characters (revision names add a suffix).
SERVICE_NAME = r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$"


@dataclass(frozen=True)
class RunServiceAdapter:
    """A Cloud Run service. Every mutation is a google.longrunning.Operation of the run API."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": ("run.projects.locations.services.get",),
        **{verb: (f"run.projects.locations.services.{method}",
                  "run.projects.locations.operations.wait")
           for verb, method in (("create", "create"), ("update", "patch"), ("delete", "delete"))},
    }

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        try:
            service = clients.run_services().get_service(name=target.path)
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise
        return to_json(service)

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        op = clients.run_services().create_service(
            parent=target.path.rsplit("/", 2)[0],
            service=_service(body),
            service_id=target.name,
        )
        return _operation(op)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        # An update replaces the whole service: what the plan does not set is sent back as
        # Google has it (traffic, labels set elsewhere), with its etag against lost updates.
        service = _service({**live, **body, "name": target.path})
        op = clients.run_services().update_service(service=service)
        return _operation(op)

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        return _operation(clients.run_services().delete_service(name=target.path))


def _service(body: dict[str, Any]) -> Any:
    from google.cloud import run_v2

    return from_json(run_v2.Service, body)


def _operation(future: Any) -> OperationRef | None:
    """The engine's handle on the operation a call started; None if it finished already."""
    op = future.operation
    if op.done and not op.HasField("error"):
        return None
    return OperationRef(type="lro", api="run", name=op.name)


def _settable(api: str, schema: str) -> frozenset[str]:
    fields = discovery.schema(api, schema)["properties"]
    return frozenset(n for n, p in fields.items() if not discovery.is_output_only(p))


KINDS = [
    Kind(
        name="run.service",
        api="run",
        schema=SCHEMA,
        path=SERVICE,
        scope=("project", "region"),
        adapter=RunServiceAdapter(),
        runs_as="template.serviceAccount",
        default_identity=True,
        name_pattern=SERVICE_NAME,
        # Only the name (and location) is fixed: every other field updates in place, as in the
        # Terraform provider's google_cloud_run_v2_service.
        mutable=_settable("run", SCHEMA) - {"name"},
        name_field="",
        outputs=("path", "uri", "urls"),
    ),
    Kind(
        name="run.service_iam_member",
        api="run",
        # IAM's own one-member-of-one-role shape: {role, member}.
        schema_api="iam",
        schema="BindingDelta",
        # The step is named by its service; role and member complete the path, so each
        # member of each role is its own resource.
        path=SERVICE + "/iam/{role}/{member}",
        scope=("project", "region"),
        adapter=PolicyMemberAdapter("run_services", SERVICE, "run.projects.locations.services"),
        name_pattern=SERVICE_NAME,
        mutable=frozenset(),
        name_field="",
        # One policy writer per service in this run; the etag guards against everyone else.
        serialize="run/" + SERVICE,
        timeout=5 * MINUTE,
    ),
]
