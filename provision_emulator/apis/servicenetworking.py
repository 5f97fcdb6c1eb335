"""Service Networking v1: private services access connections and peered DNS domains.

A connection peers the consumer's network with the service producer's (a compute peering named
after the service, `servicenetworking-googleapis-com`, see peerings.py). Google names the consumer
network by project *number* and refuses the id. Producers (Apigee organizations) register their
use of a connection; deleting it while one uses it, or for a while after the last one left
(`servicenetworking.producerRelease` in the durations), ends in a failed operation, as Google's
does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from provision_emulator import cloud as cloudlib
from provision_emulator import errors, formats, generic, operations
from provision_emulator.apis import compute, peerings
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.errors import ApiError
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

CONNECTIONS = "services.connections"
DOMAINS = "services.projects.global.networks.peeredDnsDomains"
NETWORK = re.compile(r"^projects/([^/]+)/global/networks/([^/]+)$")
PRODUCERS = "_producers"  # producers using a connection, by resource name; never answered
RELEASED = "_released"  # when the last of them stopped
IN_USE = (
    "Failed to delete connection; Producer services (e.g. CloudSQL, Cloud Memstore, etc.) are "
    "still using this connection."
)


class ServiceNetworkingRules(ApiRules):
    proto_package = "google.cloud.servicenetworking.v1"
    generic_collections = frozenset()

    def operation_path(self, cloud: Cloud, call: Call, target: str) -> str:
        # Targets here name the consumer project fourth: services/S/connections/P/N or
        # services/S/projects/NUMBER/global/networks/N/...
        project = target.split("/")[3]
        number = project if project.isdigit() else cloud.project_number(project)
        return f"operations/pssn.p24-{number}-{formats.uuid('sn', target, call.seq, call.now)}"


RULES = ServiceNetworkingRules("servicenetworking")


# --- names ----------------------------------------------------------------------------------


def peering_name(service: str) -> str:
    """`servicenetworking-googleapis-com` for `services/servicenetworking.googleapis.com`."""
    return service.rsplit("/", 1)[-1].replace(".", "-")


def _tenant_network(service: str, network_path: str) -> str:
    digest = formats.digest("servicenetworking", service, network_path).hex()
    return compute.self_link(f"projects/{digest[:16]}-tp/global/networks/servicenetworking")


def _numbered_network(cloud: Cloud, value: str, field: str) -> Resource:
    """The compute network `projects/NUMBER/global/networks/NAME` names (Google refuses ids)."""
    found = NETWORK.match(value or "")
    if found is None or not found.group(1).isdigit():
        raise errors.invalid(
            f"Invalid {field} '{value}': it must be of the form "
            "projects/{project}/global/networks/{network}, where {project} is a project number, "
            "as in '12345'."
        )
    number, name = found.groups()
    project = cloud.project_id(number) or number
    res = cloud.store.get("compute", f"projects/{project}/global/networks/{name}")
    if res is None:
        raise errors.not_found(f"Network '{value}' not found.")
    return res


def _connection_path(service: str, network_path: str) -> str:
    project, name = network_path.split("/")[1], network_path.split("/")[-1]
    return f"{service}/connections/{project}/{name}"


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("_")}


def _domains_of(service: str, number: str, network: str) -> str:
    return f"{service}/projects/{number}/global/networks/{network}/peeredDnsDomains"


def _start(
    cloud: Cloud,
    call: Call,
    target: str,
    effect: str,
    payload: dict[str, Any],
    schema: str | None = None,
) -> Operation:
    collection = DOMAINS if "/peeredDnsDomains/" in target else CONNECTIONS
    return cloud.start_operation(
        call,
        target=target,
        collection=collection,
        effect=effect,
        payload=payload,
        response_schema=schema,
    )


def _answer(cloud: Cloud, call: Call, op: Operation) -> dict[str, Any]:
    return RULES.render_operation(cloud, op, call.int_enums)


# --- connections ----------------------------------------------------------------------------


def connection(cloud: Cloud, network_path: str, service: str) -> Resource | None:
    """The live connection of a consumer network: its record, while its peering stands."""
    res = cloud.store.get("servicenetworking", _connection_path(service, network_path))
    if res is None or peerings.find(cloud, network_path, peering_name(service)) is None:
        return None
    return res


def use(cloud: Cloud, network_path: str, service: str, producer: str) -> None:
    """A producer resource (an Apigee organization) starts using the network's connection."""
    res = connection(cloud, network_path, service)
    if res is not None:
        body = {**res.body, PRODUCERS: sorted({*res.body.get(PRODUCERS, []), producer})}
        cloud.put(Resource("servicenetworking", res.path, CONNECTIONS, body, res.created))


def release(cloud: Cloud, network_path: str, service: str, producer: str, now: float) -> None:
    res = cloud.store.get("servicenetworking", _connection_path(service, network_path))
    if res is not None and producer in res.body.get(PRODUCERS, []):
        left = [p for p in res.body[PRODUCERS] if p != producer]
        body = {**res.body, PRODUCERS: left, RELEASED: now}
        cloud.put(Resource("servicenetworking", res.path, CONNECTIONS, body, res.created))


def _still_used(cloud: Cloud, body: dict[str, Any], now: float) -> bool:
    lag = operations.duration("servicenetworking", "producerRelease", cloud.config.durations)
    released = body.get(RELEASED)
    return bool(body.get(PRODUCERS)) or (
        released is not None and now < released + cloud.scaled(lag)
    )


def _range_refused(cloud: Cloud, network: Resource, ranges: list[str]) -> str | None:
    """Why Google fails the connection's operation over its ranges, or None: each must be a
    VPC_PEERING address of the network (C49 of docs/emulator-fidelity.md)."""
    project = network.path.split("/")[1]
    for name in ranges:
        address = cloud.store.get("compute", f"projects/{project}/global/addresses/{name}")
        if (
            address is None
            or address.body.get("purpose") != "VPC_PEERING"
            or address.body.get("network") != compute.self_link(network.path)
        ):
            return f"Allocated IP range '{name}' not found in network."
    return None


@RULES.handler("servicenetworking.services.connections.create")
def create_connection(cloud: Cloud, call: Call) -> dict[str, Any]:
    service = call.path.removesuffix("/connections")
    given = call.body or {}
    network = _numbered_network(cloud, given.get("network", ""), "network")
    ranges = list(given.get("reservedPeeringRanges") or [])
    if not ranges:
        raise errors.invalid("reservedPeeringRanges must name at least one allocated IP range.")
    refused = _range_refused(cloud, network, ranges)
    current = connection(cloud, network.path, service)
    if refused is None and current is not None and (
            sorted(current.body["reservedPeeringRanges"]) != sorted(ranges)):
        refused = ("Cannot modify allocated ranges in CreateConnection. Please use "
                   "UpdateConnection.")  # C50
    body = {
        "network": given["network"],
        "reservedPeeringRanges": ranges,
        "peering": peering_name(service),
        "service": service,
    }
    if current is not None:  # the same connection again: nothing to change
        body = current.body
    path = _connection_path(service, network.path)
    payload = {"network": network.path, "body": body}
    op = _start(cloud, call, path, "connect", payload, "Connection")
    if refused is not None:
        # Google accepts the request and fails its operation: "Error code 9" (observed in
        # hashicorp/terraform-provider-google#3294 and the issues quoted in the doc).
        op.error = cloudlib.failure(errors.failed_precondition(refused))
    return _answer(cloud, call, op)


@RULES.effect("connect")
def _connected(cloud: Cloud, op: Operation) -> dict[str, Any]:
    body, network_path = op.payload["body"], op.payload["network"]
    service = body["service"]
    old = cloud.store.get("servicenetworking", op.target)
    created = old.created if old else op.end
    cloud.put(Resource("servicenetworking", op.target, CONNECTIONS, body, created))
    if peerings.find(cloud, network_path, body["peering"]) is None:
        tenant = _tenant_network(service, network_path)
        peerings.put(cloud, network_path, body["peering"], tenant, op.end)
    return _public(body)


@RULES.handler("servicenetworking.services.connections.list")
def list_connections(cloud: Cloud, call: Call) -> dict[str, Any]:
    service = call.path.removesuffix("/connections")
    network = _numbered_network(cloud, call.arg("network") or "", "network")
    found = connection(cloud, network.path, service)
    return {"connections": [_public(found.body)]} if found else {}


@RULES.handler("servicenetworking.services.connections.patch")
def patch_connection(cloud: Cloud, call: Call) -> dict[str, Any]:
    service = call.path.split("/connections/", 1)[0]
    given = call.body or {}
    network = _numbered_network(cloud, given.get("network", ""), "network")
    current = connection(cloud, network.path, service)
    if current is None:
        raise _no_connection(service)
    mask = [m.strip() for m in (call.arg("updateMask") or "reservedPeeringRanges").split(",")]
    body = dict(current.body)
    refused = None
    if "reservedPeeringRanges" in mask or "reserved_peering_ranges" in mask:
        ranges = list(given.get("reservedPeeringRanges") or [])
        if not ranges:
            raise errors.invalid(
                "reservedPeeringRanges must name at least one allocated IP range.")
        refused = _range_refused(cloud, network, ranges)
        body["reservedPeeringRanges"] = ranges
    payload = {"network": network.path, "body": body}
    op = _start(cloud, call, current.path, "connect", payload, "Connection")
    if refused is not None:  # as create's (C49)
        op.error = cloudlib.failure(errors.failed_precondition(refused))
    return _answer(cloud, call, op)


def _no_connection(service: str) -> ApiError:
    return errors.failed_precondition(
        f"There is no peering ({peering_name(service)}) for the network."
    )


@RULES.handler("servicenetworking.services.connections.deleteConnection")
def delete_connection(cloud: Cloud, call: Call) -> dict[str, Any]:
    service = call.path.split("/connections/", 1)[0]
    given = call.body or {}
    network = _numbered_network(cloud, given.get("consumerNetwork", ""), "consumerNetwork")
    current = connection(cloud, network.path, service)
    if current is None:
        raise _no_connection(service)
    payload = {"network": network.path, "peering": current.body["peering"]}
    op = _start(cloud, call, current.path, "disconnect", payload)
    if _still_used(cloud, current.body, call.now):
        # Google accepts the request, and its operation fails (code 9, FAILED_PRECONDITION).
        op.error = cloudlib.failure(errors.failed_precondition(IN_USE))
    return _answer(cloud, call, op)


@RULES.effect("disconnect")
def _disconnected(cloud: Cloud, op: Operation) -> None:
    network_path = op.payload["network"]
    cloud.remove("servicenetworking", op.target)
    peerings.remove(cloud, network_path, op.payload["peering"])
    project, name = network_path.split("/")[1], network_path.split("/")[-1]
    service = op.target.split("/connections/", 1)[0]
    domains = _domains_of(service, cloud.project_number(project), name)
    for res in cloud.store.children("servicenetworking", domains):
        cloud.remove("servicenetworking", res.path)


# --- peered DNS domains ---------------------------------------------------------------------


def _domains_parent(cloud: Cloud, call: Call) -> tuple[str, str, Resource]:
    """(the peered domains' collection path, by project number; the service; the network)."""
    segments = call.path.split("/")
    service = "/".join(segments[:2])
    project = cloud.project_id(segments[3]) or segments[3]
    number = cloud.project_number(project)
    name = segments[6]
    network = cloud.store.get("compute", f"projects/{project}/global/networks/{name}")
    if network is None:
        raise errors.not_found(f"Network 'projects/{number}/global/networks/{name}' not found.")
    return _domains_of(service, number, name), service, network


@RULES.handler("servicenetworking.services.projects.global.networks.peeredDnsDomains.create")
def create_domain(cloud: Cloud, call: Call) -> dict[str, Any]:
    parent, service, network = _domains_parent(cloud, call)
    given = call.body or {}
    name, suffix = str(given.get("name") or ""), str(given.get("dnsSuffix") or "")
    if not name:
        raise errors.invalid("Required field 'name' not specified.")
    if not suffix.endswith("."):
        raise errors.invalid(f"Invalid dnsSuffix '{suffix}': a DNS suffix must end with a dot.")
    if connection(cloud, network.path, service) is None:
        raise _no_connection(service)
    path = f"{parent}/{name}"
    if cloud.store.get("servicenetworking", path) is not None or cloud.ops.pending(
        "servicenetworking", path
    ):
        raise errors.already_exists(f"Peered DNS domain '{name}' already exists.")
    body = {"name": name, "dnsSuffix": suffix}
    return _answer(cloud, call, _start(cloud, call, path, "peerDomain", body, "PeeredDnsDomain"))


@RULES.effect("peerDomain")
def _domain_peered(cloud: Cloud, op: Operation) -> dict[str, Any]:
    cloud.put(Resource("servicenetworking", op.target, DOMAINS, op.payload, op.end))
    return op.payload


@RULES.handler("servicenetworking.services.projects.global.networks.peeredDnsDomains.list")
def list_domains(cloud: Cloud, call: Call) -> dict[str, Any]:
    parent, _, _ = _domains_parent(cloud, call)
    found = [r.body for r in cloud.store.children("servicenetworking", parent)]
    return {"peeredDnsDomains": found} if found else {}


@RULES.handler("servicenetworking.services.projects.global.networks.peeredDnsDomains.delete")
def delete_domain(cloud: Cloud, call: Call) -> dict[str, Any]:
    parent, _, _ = _domains_parent(cloud, call)
    name = call.path.rsplit("/", 1)[-1]
    path = f"{parent}/{name}"
    if cloud.store.get("servicenetworking", path) is None:
        raise errors.not_found(f"Peered DNS domain '{name}' not found.")
    generic.refuse_if_busy(cloud, call, path)
    return _answer(cloud, call, _start(cloud, call, path, "unpeerDomain", {}))


@RULES.effect("unpeerDomain")
def _domain_unpeered(cloud: Cloud, op: Operation) -> None:
    cloud.remove("servicenetworking", op.target)
