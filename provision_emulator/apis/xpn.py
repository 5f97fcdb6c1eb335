"""Shared VPC (XPN), registered on compute's rules: host projects, the service projects attached
to them, and compute's `projects.get` that reports a host as such.

A host is marked by a record beside its project (`projects/H/xpnHost`), each attached service
project by one under the host (`projects/H/xpnResources/S`). Google's rules: a service project
attaches only to an enabled host, and to one host at a time; a host cannot be disabled while
service projects are attached; a host is not itself a service project. Every change is a global
operation of the host project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provision_emulator import errors, generic
from provision_emulator.apis import compute
from provision_emulator.call import Call
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

HOSTS = "projects.xpnHost"
RESOURCES = "projects.xpnResources"
PROJECTS = "projects"
NOT_HOST = "UNSPECIFIED_XPN_PROJECT_STATUS"


def _host_path(project: str) -> str:
    return f"projects/{project}/xpnHost"


def _resource_path(host: str, service: str) -> str:
    return f"projects/{host}/xpnResources/{service}"


def is_host(cloud: Cloud, project: str) -> bool:
    return cloud.store.get("compute", _host_path(project)) is not None


def host_of(cloud: Cloud, service: str) -> str | None:
    """The host project a service project is attached to."""
    for res in cloud.store.in_collection("compute", RESOURCES):
        if res.body["id"] == service:
            return res.path.split("/")[1]
    return None


def _attached(cloud: Cloud, host: str) -> list[dict[str, Any]]:
    return [r.body for r in cloud.store.children("compute", f"projects/{host}/xpnResources")]


def _attaching(cloud: Cloud, host: str) -> list[str]:
    """Service projects whose attachment to `host` is under way."""
    return [
        op.payload["service"]
        for op in cloud.ops.in_flight()
        if op.effect == "xpnResourceEnabled" and op.payload["host"] == host
    ]


def project_body(cloud: Cloud, project: str) -> dict[str, Any]:
    """Compute's view of a project."""
    number = cloud.project_number(project)
    return {
        "kind": "compute#project",
        "id": number,
        "name": project,
        "selfLink": compute.self_link(f"projects/{project}"),
        "defaultServiceAccount": f"{number}-compute@developer.gserviceaccount.com",
        "defaultNetworkTier": "PREMIUM",
        "xpnProjectStatus": "HOST" if is_host(cloud, project) else NOT_HOST,
    }


def _start(
    cloud: Cloud, call: Call, effect: str, payload: dict[str, Any], *, exclusive: bool = False
) -> dict[str, Any]:
    """An operation on the host project; `exclusive` ones (enabling or disabling the host
    itself) wait for no other."""
    target = f"projects/{call.params['project']}"
    if exclusive:
        generic.refuse_if_busy(cloud, call, target)
    op = cloud.start_operation(
        call, target=target, collection=PROJECTS, effect=effect, payload=payload
    )
    return compute.RULES.render_operation(cloud, op, call.int_enums)


# --- reads ------------------------------------------------------------------------------------


@compute.RULES.handler("compute.projects.get")
def get_project(cloud: Cloud, call: Call) -> dict[str, Any]:
    return project_body(cloud, call.params["project"])


@compute.RULES.handler("compute.projects.getXpnHost")
def get_host(cloud: Cloud, call: Call) -> dict[str, Any]:
    host = host_of(cloud, call.params["project"])
    return project_body(cloud, host) if host else {}


@compute.RULES.handler("compute.projects.getXpnResources")
def get_resources(cloud: Cloud, call: Call) -> dict[str, Any]:
    page, token = generic.paginate(call, _attached(cloud, call.params["project"]))
    out: dict[str, Any] = {"kind": "compute#projectsGetXpnResources"}
    if page:
        out["resources"] = page
    if token:
        out["nextPageToken"] = token
    return out


@compute.RULES.handler("compute.projects.listXpnHosts")
def list_hosts(cloud: Cloud, call: Call) -> dict[str, Any]:
    # The emulator has no organizations: every host it knows is listed.
    hosts = [r.path.split("/")[1] for r in cloud.store.in_collection("compute", HOSTS)]
    page, token = generic.paginate(call, [project_body(cloud, h) for h in hosts])
    out: dict[str, Any] = {
        "kind": "compute#xpnHostList",
        "id": call.path,
        "selfLink": compute.self_link(f"{call.path}/listXpnHosts"),
    }
    if page:
        out["items"] = page
    if token:
        out["nextPageToken"] = token
    return out


# --- hosts --------------------------------------------------------------------------------------


@compute.RULES.handler("compute.projects.enableXpnHost")
def enable_host(cloud: Cloud, call: Call) -> dict[str, Any]:
    project = call.params["project"]
    host = host_of(cloud, project)
    if host is not None:
        raise errors.invalid(
            f"Project '{project}' is a service project of shared VPC host '{host}': it cannot "
            "be a host project as well."
        )
    return _start(cloud, call, "xpnHostEnabled", {"project": project}, exclusive=True)


@compute.RULES.handler("compute.projects.disableXpnHost")
def disable_host(cloud: Cloud, call: Call) -> dict[str, Any]:
    project = call.params["project"]
    attached = [a["id"] for a in _attached(cloud, project)] + _attaching(cloud, project)
    if attached:
        raise errors.invalid(
            f"Cannot disable project '{project}' as a shared VPC host: it has service projects "
            f"attached ({', '.join(attached)})."
        )
    return _start(cloud, call, "xpnHostDisabled", {"project": project}, exclusive=True)


@compute.RULES.effect("xpnHostEnabled")
def _host_enabled(cloud: Cloud, op: Operation) -> None:
    project = op.payload["project"]
    cloud.put(Resource("compute", _host_path(project), HOSTS, {}, op.end))


@compute.RULES.effect("xpnHostDisabled")
def _host_disabled(cloud: Cloud, op: Operation) -> None:
    cloud.remove("compute", _host_path(op.payload["project"]))


# --- service projects -------------------------------------------------------------------------


def _service_project(call: Call) -> str:
    given = (call.body or {}).get("xpnResource") or {}
    service = str(given.get("id") or "")
    if not service:
        raise compute.required_field("xpnResource.id")
    if given.get("type", "PROJECT") != "PROJECT":
        raise compute.invalid_field(
            "xpnResource.type", given["type"], "Only projects can be shared VPC resources."
        )
    return service


@compute.RULES.handler("compute.projects.enableXpnResource")
def enable_resource(cloud: Cloud, call: Call) -> dict[str, Any]:
    host = call.params["project"]
    service = _service_project(call)
    if not is_host(cloud, host):
        raise errors.invalid(f"Project '{host}' is not a shared VPC host project.")
    if service == host or is_host(cloud, service):
        raise errors.invalid(
            f"Project '{service}' is a shared VPC host project: it cannot be a service project."
        )
    if not cloud.project_exists(service):
        raise compute.RULES.not_found(f"projects/{service}")
    current = host_of(cloud, service)
    if current not in (None, host):
        raise errors.invalid(
            f"Project '{service}' is already a service project of shared VPC host '{current}'."
        )
    return _start(cloud, call, "xpnResourceEnabled", {"host": host, "service": service})


@compute.RULES.handler("compute.projects.disableXpnResource")
def disable_resource(cloud: Cloud, call: Call) -> dict[str, Any]:
    host = call.params["project"]
    service = _service_project(call)
    return _start(cloud, call, "xpnResourceDisabled", {"host": host, "service": service})


@compute.RULES.effect("xpnResourceEnabled")
def _resource_enabled(cloud: Cloud, op: Operation) -> None:
    host, service = op.payload["host"], op.payload["service"]
    body = {"id": service, "type": "PROJECT"}
    refs = (("compute", _host_path(host)),)
    cloud.put(Resource("compute", _resource_path(host, service), RESOURCES, body, op.end, refs))


@compute.RULES.effect("xpnResourceDisabled")
def _resource_disabled(cloud: Cloud, op: Operation) -> None:
    cloud.remove("compute", _resource_path(op.payload["host"], op.payload["service"]))
