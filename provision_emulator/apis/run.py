"""Cloud Run Admin API v2: services (created with `serviceId`, changed through long-running
operations whose response and metadata are the Service) and their IAM policies; jobs, their
executions and tasks are run_jobs.py's."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from provision_emulator import errors, formats, schemas
from provision_emulator.apis import run_jobs
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.errors import ApiError
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

SERVICES = "projects.locations.services"
SERVICE_SCHEMA = "GoogleCloudRunV2Service"
CREATOR = "emulator@provision.local"
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
# The region code in a service's legacy `*.a.run.app` URL. Regions missing here get their
# initials ("me-west1" -> "mw"), which is what the real codes look like, not what they are.
REGION_CODES = {
    "us-central1": "uc",
    "us-east1": "ue",
    "us-east4": "uk",
    "us-west1": "uw",
    "us-west2": "wl",
    "europe-west1": "ew",
    "europe-west2": "nw",
    "europe-west3": "ey",
    "europe-west4": "ez",
    "europe-north1": "lz",
    "asia-east1": "de",
    "asia-northeast1": "an",
    "asia-southeast1": "as",
    "australia-southeast1": "ts",
}


SERVICE_ID = re.compile(r"^[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?$")


def region_code(region: str) -> str:
    return REGION_CODES.get(region) or "".join(p[0] for p in region.split("-")[:2])


class RunRules(ApiRules):
    proto_package = "google.cloud.run.v2"
    generic_collections = frozenset({SERVICES, run_jobs.JOBS, run_jobs.EXECUTIONS,
                                     run_jobs.TASKS})

    def not_found(self, path: str, coll: Collection | None = None) -> ApiError:
        segments = path.split("/")
        if len(segments) == 6 and segments[4] in ("services", "jobs"):
            return errors.not_found(
                f"Resource '{segments[5]}' of kind '{segments[4][:-1].upper()}' in region "
                f"'{segments[3]}' in project '{segments[1]}' does not exist."
            )
        return super().not_found(path, coll)

    def already_exists(self, path: str, coll: Collection) -> ApiError:
        return errors.already_exists(f"Resource '{path.rsplit('/', 1)[-1]}' already exists.")

    def apply_update(
        self, call: Call, coll: Collection, old: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        given = body.get("etag")
        if given and old.get("etag") and given != old["etag"]:
            raise errors.aborted(
                f"Resource '{call.path.rsplit('/', 1)[-1]}' has been modified: the etag "
                f"'{given}' does not match the current etag '{old['etag']}'."
            )
        return super().apply_update(call, coll, old, body)

    def operation_metadata(
        self, cloud: Cloud, op: Operation, int_enums: bool
    ) -> dict[str, Any] | None:
        # Run reports the Service (Job, Execution) being changed as the metadata of its
        # operations.
        schema = {SERVICES: SERVICE_SCHEMA, run_jobs.JOBS: run_jobs.JOB_SCHEMA,
                  run_jobs.EXECUTIONS: run_jobs.EXECUTION_SCHEMA}.get(op.collection)
        if schema is None:
            return None
        current = cloud.store.get("run", op.target)
        if op.collection == run_jobs.EXECUTIONS or not isinstance(op.payload, dict):
            resource = current.body if current else {}
        else:
            resource = op.payload
        if int_enums:
            resource = schemas.to_numbers("run", schema, resource)
        return {"@type": self.type_url(schema), **resource}


RULES = RunRules("run")


def _default_account(cloud: Cloud, project: str) -> str:
    return f"{cloud.project_number(project)}-compute@developer.gserviceaccount.com"


run_jobs.register(RULES, CREATOR, _default_account)


def _revision(path: str, generation: int, seq: int) -> str:
    name = path.rsplit("/", 1)[-1]
    suffix = formats.digest("revision", path, generation, seq).hex()[:3]
    return f"{path}/revisions/{name}-{generation:05d}-{suffix}"


def _reconciled(cloud: Cloud, call: Call, path: str, body: dict[str, Any], generation: int) -> None:
    """The output-only fields of a service whose latest revision is ready."""
    stamp = formats.rfc3339(call.now)
    revision = _revision(path, generation, call.seq)
    body["generation"] = str(generation)
    body["observedGeneration"] = str(generation)
    body["latestCreatedRevision"] = revision
    body["latestReadyRevision"] = revision
    body["terminalCondition"] = {
        "type": "Ready",
        "state": "CONDITION_SUCCEEDED",
        "lastTransitionTime": stamp,
    }
    body["conditions"] = [
        {"type": t, "state": "CONDITION_SUCCEEDED", "lastTransitionTime": stamp}
        for t in ("RoutesReady", "ConfigurationsReady")
    ]
    body["trafficStatuses"] = [
        {"type": t.get("type", LATEST), "percent": t.get("percent", 100)}
        | ({"revision": t["revision"]} if t.get("revision") else {})
        for t in body.get("traffic", [])
    ]
    body["reconciling"] = False
    body["lastModifier"] = CREATOR


def _check_template(body: dict[str, Any]) -> None:
    containers = (body.get("template") or {}).get("containers") or []
    if not containers:
        raise errors.invalid("service.template.containers: at least one container is required.")
    for i, container in enumerate(containers):
        if not container.get("image"):
            raise errors.invalid(f"service.template.containers[{i}].image: Required.")


@RULES.on_create(SERVICES)
def _create_service(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    _check_template(body)
    path = body["name"]
    _, project, _, location, _, name = path.split("/")
    if not SERVICE_ID.match(name):
        # Google's words (C73 of docs/emulator-fidelity.md).
        raise errors.invalid(
            "Violation in CreateServiceRequest.service_id: only lowercase, digits, and hyphens; "
            "must begin with letter, and cannot end with hyphen; must be less than 50 "
            "characters.")
    number = cloud.project_number(project)
    body.setdefault("ingress", "INGRESS_TRAFFIC_ALL")
    body.setdefault("launchStage", "GA")
    body.setdefault("traffic", [{"type": LATEST, "percent": 100}])
    template = body["template"]
    template.setdefault("serviceAccount", _default_account(cloud, project))
    template.setdefault("timeout", "300s")
    template.setdefault("maxInstanceRequestConcurrency", 80)
    project_hash = formats.digest("run", project).hex()[:10]
    body["uri"] = f"https://{name}-{project_hash}-{region_code(location)}.a.run.app"
    body["urls"] = [f"https://{name}-{number}.{location}.run.app", body["uri"]]
    body["creator"] = CREATOR
    _reconciled(cloud, call, path, body, 1)


@RULES.on_update(SERVICES)
def _update_service(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    _check_template(body)
    _reconciled(cloud, call, res.path, body, int(res.body.get("generation", "1")) + 1)
