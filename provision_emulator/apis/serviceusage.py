"""Service Usage v1: which APIs a project has enabled. Every service Google publishes a
discovery document for exists, DISABLED until enabled; enable/disable are long-running."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google_facts import discovery
from provision_emulator import errors, filters, formats, generic
from provision_emulator.apis.base import ApiRules, project_by_id
from provision_emulator.call import Call
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

SERVICES = "services"
BATCH_LIMIT = 20  # services per batchEnable, as Google limits it
DOMAIN = ".googleapis.com"


@functools.cache
def _known_apis() -> frozenset[str]:
    spec = importlib.util.find_spec("googleapiclient")
    assert spec is not None and spec.submodule_search_locations
    docs = Path(next(iter(spec.submodule_search_locations))) / "discovery_cache" / "documents"
    return frozenset(p.name.split(".", 1)[0] for p in docs.glob("*.json"))


def _title(service: str) -> str:
    api = service.removesuffix(DOMAIN)
    try:
        return discovery.document(api).get("title", service)
    except (KeyError, FileNotFoundError):
        return service


def _check(services: list[str]) -> None:
    unknown = [s for s in services if s.removesuffix(DOMAIN) not in _known_apis()]
    if unknown:
        raise errors.permission_denied(
            f"Not found or permission denied for service(s): {', '.join(unknown)}."
        )


class ServiceUsageRules(ApiRules):
    proto_package = "google.api.serviceusage.v1"
    generic_collections = frozenset()

    def canonical(self, cloud: Cloud, path: str) -> str:
        return project_by_id(cloud, path)

    def operation_path(self, cloud: Cloud, call: Call, target: str) -> str:
        number = cloud.project_number(call.project) if call.project else "0"
        return f"operations/acf.p2-{number}-{formats.uuid('serviceusage', call.seq, call.now)}"

    def operation_metadata(
        self, cloud: Cloud, op: Operation, int_enums: bool
    ) -> dict[str, Any] | None:
        return {
            "@type": self.type_url("OperationMetadata"),
            "resourceNames": [
                f"services/{s}/projectSettings/{op.payload['project']}"
                for s in op.payload["services"]
            ],
        }


RULES = ServiceUsageRules("serviceusage")


def service_body(cloud: Cloud, project: str, service: str, state: str) -> dict[str, Any]:
    number = cloud.project_number(project)
    return {
        "name": f"projects/{number}/services/{service}",
        "parent": f"projects/{number}",
        "config": {"name": service, "title": _title(service)},
        "state": state,
    }


def _read(cloud: Cloud, project: str, service: str) -> dict[str, Any]:
    stored = cloud.store.get("serviceusage", f"projects/{project}/services/{service}")
    return stored.body if stored else service_body(cloud, project, service, "DISABLED")


def _project(cloud: Cloud, call: Call) -> str:
    return RULES.canonical(cloud, call.path).split("/")[1]


def _start(
    cloud: Cloud, call: Call, project: str, services: list[str], effect: str, response: str
) -> dict[str, Any]:
    _check(services)
    target = f"projects/{project}/services/{services[0]}" if len(services) == 1 else ""
    op = cloud.start_operation(
        call,
        target=target,
        collection=SERVICES,
        effect=effect,
        payload={"project": project, "services": services},
        response_schema=response,
    )
    return RULES.render_operation(cloud, op, call.int_enums)


@RULES.handler("serviceusage.services.get")
def get_service(cloud: Cloud, call: Call) -> dict[str, Any]:
    service = call.path.rsplit("/", 1)[-1]
    _check([service])
    return _read(cloud, _project(cloud, call), service)


@RULES.handler("serviceusage.services.batchGet")
def batch_get(cloud: Cloud, call: Call) -> dict[str, Any]:
    names = [n.rsplit("/", 1)[-1] for n in call.query.get("names", [])]
    _check(names)
    project = _project(cloud, call)
    return {"services": [_read(cloud, project, s) for s in names]}


@RULES.handler("serviceusage.services.list")
def list_services(cloud: Cloud, call: Call) -> dict[str, Any]:
    keep = filters.parse(call.arg("filter"))
    project = _project(cloud, call)
    bodies = [r.body for r in cloud.store.children("serviceusage", f"projects/{project}/services")]
    page, token = generic.paginate(call, [b for b in bodies if keep(b)])
    return {"services": page} | ({"nextPageToken": token} if token else {})


@RULES.handler("serviceusage.services.enable")
def enable(cloud: Cloud, call: Call) -> dict[str, Any]:
    service = call.path.rsplit("/", 1)[-1]
    return _start(cloud, call, _project(cloud, call), [service], "enable", "EnableServiceResponse")


@RULES.handler("serviceusage.services.disable")
def disable(cloud: Cloud, call: Call) -> dict[str, Any]:
    service = call.path.rsplit("/", 1)[-1]
    return _start(
        cloud, call, _project(cloud, call), [service], "disable", "DisableServiceResponse"
    )


@RULES.handler("serviceusage.services.batchEnable")
def batch_enable(cloud: Cloud, call: Call) -> dict[str, Any]:
    services = list((call.body or {}).get("serviceIds") or [])
    if not services or len(services) > BATCH_LIMIT:
        raise errors.invalid(f"serviceIds must name between 1 and {BATCH_LIMIT} services.")
    return _start(
        cloud, call, _project(cloud, call), services, "batchEnable", "BatchEnableServicesResponse"
    )


def _set_state(cloud: Cloud, op: Operation, state: str) -> list[dict[str, Any]]:
    project = op.payload["project"]
    out = []
    for service in op.payload["services"]:
        body = service_body(cloud, project, service, state)
        path = f"projects/{project}/services/{service}"
        cloud.put(Resource("serviceusage", path, SERVICES, body, op.end))
        out.append(body)
    return out


@RULES.effect("enable")
def _enabled(cloud: Cloud, op: Operation) -> dict[str, Any]:
    return {"service": _set_state(cloud, op, "ENABLED")[0]}


@RULES.effect("batchEnable")
def _batch_enabled(cloud: Cloud, op: Operation) -> dict[str, Any]:
    return {"services": _set_state(cloud, op, "ENABLED")}


@RULES.effect("disable")
def _disabled(cloud: Cloud, op: Operation) -> dict[str, Any]:
    return {"service": _set_state(cloud, op, "DISABLED")[0]}
