"""Apigee v1: the organization and its runtime (instances, environments, environment groups,
attachments, endpoint attachments, DNS zones). API proxies and deployments: apigee_proxies.py.

Google's rules modelled here:
- One long-running operation per organization at a time: a mutation meanwhile is refused with
  400 FAILED_PRECONDITION "the resource is locked by another operation ...". Every operation
  keeps its start and end (the emulator's state dump), so a test can check none overlapped.
- An organization peers with its `authorizedNetwork` through Service Networking, so the network
  needs that connection first (unless `disableVpcPeering`); it then counts as a producer using
  the connection until it is deleted.
- An instance publishes its runtime through a compute service attachment in the organization's
  tenant project (`apigeeProjectId`), accepting the projects of its `consumerAcceptList`.
- An endpoint attachment connects from the tenant project to a producer's service attachment;
  its `connectionState` is what that attachment's accept and reject lists make of the tenant
  project, read afresh each time (ACCEPTED_LIMITED_CAPACITY when faults say the producer lacks
  capacity: see `Faults.limited_capacity`).
- Names: most Apigee resources answer their short name; endpoint attachments and DNS zones their
  full one. Times are milliseconds since the epoch (`createdAt`).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import TYPE_CHECKING, Any

from provision_emulator import catalog, errors, faults, formats, generic, schemas
from provision_emulator.apis import (
    apigee_debug,
    apigee_keystores,
    apigee_proxies,
    compute,
    ipam,
    servicenetworking,
)
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.errors import ApiError
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

ORGS = "organizations"
INSTANCES = "organizations.instances"
ENVIRONMENTS = "organizations.environments"
ENVGROUPS = "organizations.envgroups"
ENVGROUP_ATTACHMENTS = "organizations.envgroups.attachments"
INSTANCE_ATTACHMENTS = "organizations.instances.attachments"
ENDPOINT_ATTACHMENTS = "organizations.endpointAttachments"
ENDPOINT_ATTACHMENT_ID = re.compile(r"^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])$")
DNS_ZONES = "organizations.dnsZones"
FULL_NAMES = frozenset({ENDPOINT_ATTACHMENTS, DNS_ZONES})  # `name` is the resource path
SERVER_NAMED = frozenset({ENVGROUP_ATTACHMENTS, INSTANCE_ATTACHMENTS})  # Google picks the id
PSA = "services/servicenetworking.googleapis.com"
RUNTIME_PREFIX = 22  # an instance's runtime range: the /22 of its ipRange
# Where endpoint attachments of organizations without VPC peering take their hosts (guessed).
UNPEERED_HOSTS = "7.0.0.0/16"
VERB_TYPES = {"create": "INSERT", "delete": "DELETE"}  # anything else is an UPDATE
VERB_WORDS = {"INSERT": "created", "DELETE": "deleted", "UPDATE": "updated"}


def millis(t: float) -> str:
    return str(int(t * 1000))


class ApigeeRules(ApiRules):
    proto_package = "google.cloud.apigee.v1"

    def resource_id(self, call: Call, coll: Collection, body: dict[str, Any]) -> str:
        if coll.name in SERVER_NAMED:
            # From the request's draw key (its method, parent and how many came before), not
            # its place in the log: the same id at any parallelism.
            return formats.uuid("apigee", call.path, body.get("environment"), call.draw)
        # envgroups and environments may take their name as a query parameter
        return (
            call.arg(coll.singular_id_param)
            or call.arg("name")
            or super().resource_id(call, coll, body)
        )

    def new_resource(
        self, cloud: Cloud, call: Call, coll: Collection, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        out = super().new_resource(cloud, call, coll, path, body)
        props = schemas.properties("apigee", coll.schema) if coll.schema else frozenset()
        if "name" in props and coll.name not in FULL_NAMES:
            out["name"] = path.rsplit("/", 1)[-1]
        for field in ("createdAt", "lastModifiedAt"):
            if field in props:
                out[field] = millis(call.now)
        if "state" in props:
            out["state"] = "ACTIVE"
        return out

    def updated_resource(
        self, cloud: Cloud, call: Call, coll: Collection, old: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        out = super().updated_resource(cloud, call, coll, old, new)
        if "lastModifiedAt" in old:
            out["lastModifiedAt"] = millis(call.now)
        return out

    def busy(self, path: str, op: Operation) -> ApiError:
        return locked(op)

    def operation_metadata(
        self, cloud: Cloud, op: Operation, int_enums: bool
    ) -> dict[str, Any] | None:
        span = max(op.end - op.start, 1e-9)
        percent = 100 if op.done else min(99, int(100 * (cloud.now() - op.start) / span))
        return {
            "@type": self.type_url("GoogleCloudApigeeV1OperationMetadata"),
            "operationType": VERB_TYPES.get(op.verb, "UPDATE"),
            "targetResourceName": op.target,
            "state": "FINISHED" if op.done else "IN_PROGRESS",
            "progress": {
                "description": "Succeeded" if op.done and not op.error else "Running",
                "percentDone": percent,
            },
        }


RULES = ApigeeRules("apigee")
apigee_proxies.register(RULES)
apigee_keystores.register(RULES)
apigee_debug.register(RULES)


# --- one operation per organization ---------------------------------------------------------


def locked(op: Operation) -> ApiError:
    org = op.path.split("/")[1]
    kind = schemas.snake(op.collection.rsplit(".", 1)[-1]).replace("_", " ").removesuffix("s")
    what = f"{kind} {op.target.rsplit('/', 1)[-1]}"
    verb = VERB_WORDS[VERB_TYPES.get(op.verb, "UPDATE")]
    return errors.failed_precondition(
        f"the resource is locked by another operation where {what} is currently being {verb} "
        f"for organization {org} by operation: {op.path.rsplit('/', 1)[-1]}"
    )


def refuse_if_locked(cloud: Cloud, org: str) -> None:
    for op in cloud.ops.under("apigee", f"organizations/{org}/operations"):
        if not op.done:
            raise locked(op)


def _org_of(call: Call) -> str:
    return call.path.split("/")[1]


def _check_create(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    # What a resource is created in must exist (the generic create does not look).
    parent = call.path.rsplit("/", 1)[0]
    if cloud.store.get("apigee", parent) is None:
        raise RULES.not_found(parent)
    if catalog.returns_operation(call.method):
        refuse_if_locked(cloud, _org_of(call))


def _refuse_while_locked(cloud: Cloud, call: Call) -> None:
    if catalog.returns_operation(call.method):
        refuse_if_locked(cloud, _org_of(call))


def _check_update(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    _refuse_while_locked(cloud, call)


def _check_delete(cloud: Cloud, call: Call, res: Resource) -> None:
    _refuse_while_locked(cloud, call)


_ORG_SCOPED = [name for name in catalog.collections("apigee") if name.startswith(f"{ORGS}.")]
RULES.on_create(*_ORG_SCOPED)(_check_create)
RULES.on_update(*_ORG_SCOPED)(_check_update)
RULES.on_delete(*_ORG_SCOPED)(_check_delete)


# --- organizations --------------------------------------------------------------------------


def tenant_project(org: str) -> str:
    return f"t{formats.digest('apigee-tenant', org).hex()[:14]}-tp"


def network_path(org: dict[str, Any]) -> str | None:
    """The compute network an organization's `authorizedNetwork` names (a bare name is one in
    the organization's own project)."""
    given = str(org.get("authorizedNetwork") or "")
    if not given:
        return None
    if "/" not in given:
        return f"projects/{org['projectId']}/global/networks/{given}"
    return given[given.index("projects/") :] if "projects/" in given else given


def _org(cloud: Cloud, org: str) -> Resource:
    res = cloud.store.get("apigee", f"organizations/{org}")
    if res is None:
        raise RULES.not_found(f"organizations/{org}")
    return res


@RULES.handler("apigee.organizations.list")
def list_organizations(cloud: Cloud, call: Call) -> dict[str, Any]:
    """The caller's organizations as Google lists them: not the organizations themselves but
    each one's project mapping (ListOrganizationsResponse, OrganizationProjectMapping)."""
    if call.params.get("parent", call.path) != "organizations":
        raise errors.invalid("parent must be 'organizations'.")
    mappings = [
        {"organization": res.body["name"], "projectId": res.body.get("projectId", ""),
         "projectIds": [res.body.get("projectId", "")]}
        for res in sorted(cloud.store.in_collection("apigee", "organizations"),
                          key=lambda r: r.path)
    ]
    return {"organizations": mappings} if mappings else {}


def _ca_certificate(org: str) -> str:
    pem = (
        "-----BEGIN CERTIFICATE-----\n"
        + base64.b64encode(formats.digest("apigee-ca", org) * 8).decode()
        + "\n-----END CERTIFICATE-----\n"
    )
    return base64.b64encode(pem.encode()).decode()


def _check_peering(cloud: Cloud, body: dict[str, Any]) -> str | None:
    """The network the organization peers with, refused as Google refuses it."""
    if body.get("disableVpcPeering"):
        return None
    path = network_path(body)
    if path is None:
        raise errors.invalid(
            "authorizedNetwork is required unless disableVpcPeering is true: it names the "
            "network peered with the Apigee runtime through Service Networking."
        )
    if cloud.store.get("compute", path) is None:
        raise errors.invalid(f"Authorized network '{body['authorizedNetwork']}' not found.")
    if servicenetworking.connection(cloud, path, PSA) is None:
        raise errors.failed_precondition(
            f"Authorized network '{body['authorizedNetwork']}' is not peered with Service "
            "Networking (servicenetworking.googleapis.com): create the private services "
            "access connection first."
        )
    return path


@RULES.handler("apigee.organizations.create")
def create_organization(cloud: Cloud, call: Call) -> dict[str, Any]:
    parent = call.arg("parent") or ""
    if not parent.startswith("projects/"):
        raise errors.invalid(f"Invalid parent '{parent}': expected projects/{{project}}.")
    project = cloud.project_id(parent.split("/")[1]) or parent.split("/")[1]
    path = f"organizations/{project}"
    coll = catalog.collections("apigee")[ORGS]
    pending = cloud.ops.pending("apigee", path)
    if cloud.store.get("apigee", path) is not None or (pending and pending.effect != "delete"):
        raise RULES.already_exists(path, coll)
    refuse_if_locked(cloud, project)
    body = schemas.strip_output_only("apigee", "GoogleCloudApigeeV1Organization", call.body or {})
    if not body.get("runtimeType"):
        raise errors.invalid("runtimeType must be specified (CLOUD or HYBRID).")
    if not body.get("analyticsRegion") and not body.get("apiConsumerDataLocation"):
        raise errors.invalid("analyticsRegion must be specified.")
    body["projectId"] = project
    peered = _check_peering(cloud, body) if body["runtimeType"] == "CLOUD" else None
    evaluation = body.get("billingType") == "EVALUATION"
    body.update(
        name=project,
        state="ACTIVE",
        apigeeProjectId=tenant_project(project),
        caCertificate=_ca_certificate(project),
        subscriptionType="TRIAL" if evaluation else "PAID",
        billingType=body.get("billingType") or "SUBSCRIPTION",
        createdAt=millis(call.now),
        lastModifiedAt=millis(call.now),
    )
    if evaluation:
        body["expiresAt"] = millis(call.now + 60 * 86400)
    op = cloud.start_operation(
        call,
        target=path,
        collection=ORGS,
        effect="organizationCreated",
        payload={"body": body, "network": peered},
        verb="create",
        response_schema="GoogleCloudApigeeV1Organization",
    )
    return RULES.render_operation(cloud, op, call.int_enums)


@RULES.effect("organizationCreated")
def _organization_created(cloud: Cloud, op: Operation) -> dict[str, Any]:
    res = Resource("apigee", op.target, ORGS, op.payload["body"], op.end)
    cloud.put(res)
    if op.payload["network"]:
        servicenetworking.use(cloud, op.payload["network"], PSA, op.target)
    return RULES.render(cloud, res)


@RULES.on_read(ORGS)
def _organization_environments(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    envs = [
        r.path.rsplit("/", 1)[-1]
        for r in cloud.store.children("apigee", f"{res.path}/environments")
    ]
    if envs:
        body["environments"] = envs
    return body


@RULES.handler("apigee.organizations.delete")
def delete_organization(cloud: Cloud, call: Call) -> dict[str, Any]:
    org = _org(cloud, _org_of(call))
    refuse_if_locked(cloud, _org_of(call))
    op = cloud.start_operation(
        call,
        target=org.path,
        collection=ORGS,
        effect="organizationDeleted",
        verb="delete",
        response_schema="GoogleCloudApigeeV1Organization",
    )
    return RULES.render_operation(cloud, op, call.int_enums)


@RULES.effect("organizationDeleted")
def _organization_deleted(cloud: Cloud, op: Operation) -> dict[str, Any] | None:
    """Everything of the organization goes with it; its network connection is released."""
    org = cloud.store.get("apigee", op.target)
    if org is None:
        return None
    for res in list(cloud.store):
        if res.api == "apigee" and res.path.startswith(f"{op.target}/"):
            _remove_runtime(cloud, res)
    cloud.remove("apigee", op.target)
    peered = network_path(org.body)
    if peered and not org.body.get("disableVpcPeering"):
        servicenetworking.release(cloud, peered, PSA, op.target, op.end)
    return org.body


def _remove_runtime(cloud: Cloud, res: Resource) -> None:
    cloud.remove("apigee", res.path)
    if res.collection == INSTANCES and res.body.get("serviceAttachment"):
        cloud.remove("compute", res.body["serviceAttachment"])


# --- instances ------------------------------------------------------------------------------


def _reserved_ranges(cloud: Cloud, network: str) -> list[ipaddress.IPv4Network]:
    connection = servicenetworking.connection(cloud, network, PSA)
    if connection is None:
        return []
    project = network.split("/")[1]
    out = []
    for name in connection.body["reservedPeeringRanges"]:
        address = cloud.store.get("compute", f"projects/{project}/global/addresses/{name}")
        if address is not None:
            cidr = f"{address.body['address']}/{address.body['prefixLength']}"
            out.append(ipaddress.IPv4Network(cidr))
    return out


def _runtime_ranges(cloud: Cloud, org: str) -> list[ipaddress.IPv4Network]:
    """The runtime ranges of an organization's instances, existing and being created."""
    bodies = [r.body for r in cloud.store.children("apigee", f"organizations/{org}/instances")]
    bodies += [
        op.payload
        for op in cloud.ops.under("apigee", f"organizations/{org}/operations")
        if not op.done and op.effect == "instanceCreated"
    ]
    return [
        ipaddress.ip_interface(f"{b['host']}/{RUNTIME_PREFIX}").network
        for b in bodies
        if b.get("host")
    ]


def _runtime_range(
    cloud: Cloud, org: str, network: str, ip_range: str | None
) -> ipaddress.IPv4Network:
    reserved = _reserved_ranges(cloud, network)
    taken = _runtime_ranges(cloud, org)
    if ip_range:
        try:
            chosen = [ipaddress.IPv4Network(p.strip()) for p in ip_range.split(",")]
        except ValueError as exc:
            raise errors.invalid(f"Invalid ipRange '{ip_range}'.") from exc
        for cidr in chosen:
            if not any(cidr.subnet_of(r) for r in reserved):
                raise errors.invalid(
                    f"ipRange {cidr} is not within the ranges reserved for Service Networking "
                    f"on {network}."
                )
        # "CIDR blocks of length 22 and/or 28 ... just /22 or /28 or both (or neither)"
        # (Instance.ipRange; C53): without a /22, Apigee picks the runtime's itself.
        if sorted(c.prefixlen for c in chosen) not in ([22], [28], [22, 28]):
            raise errors.invalid(f"Invalid ipRange '{ip_range}': expected a.b.c.d/22, "
                                 "e.f.g.h/28 or a.b.c.d/22,e.f.g.h/28.")
        runtime = next((c for c in chosen if c.prefixlen == RUNTIME_PREFIX), None)
        if runtime is not None:
            if any(runtime.overlaps(t) for t in taken):
                raise errors.invalid(f"ipRange {runtime} is already used by another instance.")
            return runtime
    for block in reserved:
        if block.prefixlen > RUNTIME_PREFIX:
            continue
        for runtime in block.subnets(new_prefix=RUNTIME_PREFIX):
            if not any(runtime.overlaps(t) for t in taken):
                return runtime
    raise errors.failed_precondition(
        f"No free /{RUNTIME_PREFIX} range is left in the ranges reserved for Service Networking "
        f"on {network}."
    )


def _service_attachment(
    tenant: str, instance: dict[str, Any], path: str, now: float
) -> dict[str, Any]:
    """The compute service attachment publishing an instance's runtime in the tenant project."""
    location = instance["location"]
    return {
        "kind": "compute#serviceAttachment",
        "id": formats.numeric_id("compute", path),
        "creationTimestamp": formats.compute_time(now),
        "name": path.rsplit("/", 1)[-1],
        "selfLink": compute.self_link(path),
        "region": compute.self_link(f"projects/{tenant}/regions/{location}"),
        "connectionPreference": "ACCEPT_MANUAL",
        "consumerAcceptLists": [
            {"projectIdOrNum": p, "connectionLimit": 1000} for p in instance["consumerAcceptList"]
        ],
        "enableProxyProtocol": False,
        "fingerprint": formats.fingerprint("compute", path, now),
    }


@RULES.handler("apigee.organizations.instances.create")
def create_instance(cloud: Cloud, call: Call) -> dict[str, Any]:
    org_name = _org_of(call)
    org = _org(cloud, org_name)
    refuse_if_locked(cloud, org_name)
    coll = catalog.collections("apigee")[INSTANCES]
    body = schemas.strip_output_only("apigee", "GoogleCloudApigeeV1Instance", call.body or {})
    name, location = body.get("name"), body.get("location")
    if not name or not location:
        raise errors.invalid("An instance needs a name and a location.")
    path = f"{call.path}/{name}"
    if cloud.store.get("apigee", path) is not None:
        raise RULES.already_exists(path, coll)
    siblings = [r.body for r in cloud.store.children("apigee", call.path)]
    if siblings and org.body.get("billingType") == "EVALUATION":
        # Only paid organizations expand to more regions ("Expand an existing Apigee X paid
        # organization to multiple regions", provisioning-req; C54).
        raise errors.failed_precondition(
            f"organization {org_name} is an evaluation organization and already has an "
            "instance; evaluation organizations have one instance."
        )
    if any(b.get("location") == location for b in siblings):
        raise errors.failed_precondition(
            f"organization {org_name} already has an instance in location {location}; there can "
            "be only one instance per location."
        )
    if org.body.get("disableVpcPeering") and body.get("ipRange"):
        # ipRange's blocks come from "a larger named range you have allocated to the Service
        # Networking peering" (Instance.ipRange), which such an organization has not (C58).
        raise errors.invalid(
            f"ipRange cannot be set: organization {org_name} has no VPC peering "
            "(disableVpcPeering), so there are no Service Networking ranges to take it from."
        )
    instance = RULES.new_resource(cloud, call, coll, path, body)
    if not org.body.get("disableVpcPeering"):
        network = network_path(org.body)
        assert network is not None
        runtime = _runtime_range(cloud, org_name, network, body.get("ipRange"))
        instance["host"] = str(runtime.network_address + 2)
        instance.setdefault("peeringCidrRange", f"SLASH_{RUNTIME_PREFIX}")
    tenant = org.body["apigeeProjectId"]
    suffix = formats.digest("apigee", path).hex()[:4]
    instance.update(
        port="443",
        runtimeVersion="1-14-0-apigee-4",
        serviceAttachment=f"projects/{tenant}/regions/{location}/serviceAttachments/"
        f"apigee-{location}-{suffix}",
    )
    instance.setdefault("consumerAcceptList", [org.body["projectId"]])
    op = cloud.start_operation(
        call, target=path, collection=INSTANCES, effect="instanceCreated", payload=instance
    )
    return RULES.render_operation(cloud, op, call.int_enums)


def _put_instance(cloud: Cloud, path: str, instance: dict[str, Any], now: float) -> Resource:
    tenant = instance["serviceAttachment"].split("/")[1]
    attachment = instance["serviceAttachment"]
    sa = _service_attachment(tenant, instance, attachment, now)
    old = cloud.store.get("compute", attachment)
    if old is not None:  # keep its identity; only what it accepts changes
        sa = {**old.body, "consumerAcceptLists": sa["consumerAcceptLists"]}
    cloud.put(
        Resource("compute", attachment, "serviceAttachments", sa, old.created if old else now)
    )
    res = Resource("apigee", path, INSTANCES, instance, now, (("compute", attachment),))
    cloud.put(res)
    return res


@RULES.effect("instanceCreated")
def _instance_created(cloud: Cloud, op: Operation) -> dict[str, Any]:
    return RULES.render(cloud, _put_instance(cloud, op.target, op.payload, op.end))


@RULES.handler("apigee.organizations.instances.patch")
def patch_instance(cloud: Cloud, call: Call) -> dict[str, Any]:
    refuse_if_locked(cloud, _org_of(call))
    coll = catalog.collections("apigee")[INSTANCES]
    res = generic.existing(cloud, call, call.path, coll)
    given = schemas.strip_output_only("apigee", "GoogleCloudApigeeV1Instance", call.body or {})
    mask = [m.strip() for m in (call.arg("updateMask") or "").split(",") if m.strip()]
    unknown = [
        m for m in mask if schemas.camel(m) not in ("consumerAcceptList", "accessLoggingConfig")
    ]
    if not mask or unknown:
        raise errors.invalid(
            "updateMask must name fields an instance can change: consumer_accept_list, "
            "access_logging_config."
        )
    new = RULES.updated_resource(
        cloud, call, coll, res.body, RULES.apply_update(call, coll, res.body, given)
    )
    op = cloud.start_operation(
        call, target=res.path, collection=INSTANCES, effect="instanceUpdated", payload=new
    )
    return RULES.render_operation(cloud, op, call.int_enums)


@RULES.effect("instanceUpdated")
def _instance_updated(cloud: Cloud, op: Operation) -> dict[str, Any] | None:
    if cloud.store.get("apigee", op.target) is None:
        return None
    return RULES.render(cloud, _put_instance(cloud, op.target, op.payload, op.end))


@RULES.handler("apigee.organizations.instances.delete")
def delete_instance(cloud: Cloud, call: Call) -> dict[str, Any]:
    coll = catalog.collections("apigee")[INSTANCES]
    res = generic.existing(cloud, call, call.path, coll)
    refuse_if_locked(cloud, _org_of(call))
    op = cloud.start_operation(
        call, target=res.path, collection=INSTANCES, effect="instanceDeleted", verb="delete"
    )
    return RULES.render_operation(cloud, op, call.int_enums)


@RULES.effect("instanceDeleted")
def _instance_deleted(cloud: Cloud, op: Operation) -> dict[str, Any] | None:
    res = cloud.store.get("apigee", op.target)
    if res is None:
        return None
    for child in cloud.store.children("apigee", f"{op.target}/attachments"):
        cloud.remove("apigee", child.path)
    _remove_runtime(cloud, res)
    return res.body


# --- environments, groups and attachments ---------------------------------------------------


def _environment_exists(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    env = str(body.get("environment") or "")
    if not env:
        raise errors.invalid("environment must be set.")
    if cloud.store.get("apigee", f"organizations/{_org_of(call)}/environments/{env}") is None:
        raise errors.not_found(f'environment "{env}" not found in organization {_org_of(call)}')
    attached = [r.body.get("environment") for r in cloud.store.children("apigee", call.path)]
    if env in attached:
        raise errors.already_exists(f'environment "{env}" is already attached to {call.path}')


def _hostnames_free(cloud: Cloud, org: str, group: str, body: dict[str, Any]) -> None:
    """A hostname belongs to one group: "The names assigned to an environment group must be
    unique to that group: they can't be used by other environment groups"
    (environmentgroups-working-with; C57)."""
    for other in cloud.store.children("apigee", f"organizations/{org}/envgroups"):
        name = other.path.rsplit("/", 1)[-1]
        taken = set(other.body.get("hostnames") or ()) & set(body.get("hostnames") or ())
        if name != group and taken:
            raise errors.invalid(
                f"hostname {sorted(taken)[0]} is already used by environment group {name}; a "
                "hostname can belong to only one environment group."
            )


@RULES.on_create(ENVGROUPS)
def _envgroup(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    _hostnames_free(cloud, _org_of(call), str(body.get("name") or ""), body)


@RULES.on_update(ENVGROUPS)
def _envgroup_patch(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    _hostnames_free(cloud, _org_of(call), res.path.rsplit("/", 1)[-1], body)


@RULES.on_create(ENVGROUP_ATTACHMENTS)
def _envgroup_attachment(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    _environment_exists(cloud, call, body)
    body["environmentGroupId"] = call.path.split("/")[3]


@RULES.on_create(INSTANCE_ATTACHMENTS)
def _instance_attachment(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    _environment_exists(cloud, call, body)


@RULES.on_delete(ENVIRONMENTS)
def _environment_unused(cloud: Cloud, call: Call, res: Resource) -> None:
    env = res.path.rsplit("/", 1)[-1]
    org = f"organizations/{_org_of(call)}"
    users = [
        r.path
        for coll in (ENVGROUP_ATTACHMENTS, INSTANCE_ATTACHMENTS)
        for r in cloud.store.in_collection("apigee", coll)
        if r.path.startswith(f"{org}/") and r.body.get("environment") == env
    ]
    users += apigee_proxies.deployments_in(cloud, res.path)
    if users:
        raise errors.failed_precondition(
            f'environment "{env}" cannot be deleted while in use by {users[0]}'
        )


# --- endpoint attachments -------------------------------------------------------------------


def _endpoint_host(cloud: Cloud, org: Resource) -> str:
    """A free address of the organization's runtime range for a new endpoint attachment."""
    ranges = _runtime_ranges(cloud, org.path.split("/")[1])
    if org.body.get("disableVpcPeering"):
        ranges = [ipaddress.IPv4Network(UNPEERED_HOSTS)]
    if not ranges:
        raise errors.failed_precondition(
            f"organization {org.body['name']} has no runtime instance to attach endpoints to."
        )
    used = {r.body.get("host") for r in cloud.store.children("apigee", f"{org.path}/instances")}
    used |= {
        r.body.get("host")
        for r in cloud.store.children("apigee", f"{org.path}/endpointAttachments")
    }
    used |= {
        op.payload.get("host")
        for op in cloud.ops.under("apigee", f"{org.path}/operations")
        if not op.done and isinstance(op.payload, dict)
    }
    host = ipam.free_host(str(ranges[0]), {u for u in used if u})
    if host is None:
        raise errors.failed_precondition("No free address is left for the endpoint attachment.")
    return host


@RULES.on_create(ENDPOINT_ATTACHMENTS)
def _endpoint_attachment(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    org = _org(cloud, _org_of(call))
    wanted = (call.query.get("endpointAttachmentId") or [""])[0]
    if not ENDPOINT_ATTACHMENT_ID.match(wanted):
        # "ID must start with a lowercase letter followed by up to 31 lowercase letters,
        # numbers, or hyphens, and cannot end with a hyphen. The minimum length is 2." (C55)
        raise errors.invalid(f"Invalid endpointAttachmentId '{wanted}': it must start with a "
                             "lowercase letter followed by up to 31 lowercase letters, numbers "
                             "or hyphens, not end with a hyphen, and be at least 2 long.")
    target = str(body.get("serviceAttachment") or "")
    attachment = cloud.resolve(call, target)
    if attachment is None or attachment.collection != "serviceAttachments":
        raise errors.invalid(f"serviceAttachment '{target}' is not a service attachment.")
    region = compute.region_of(attachment.path)
    if body.get("location") != region:
        raise errors.invalid(
            f"location '{body.get('location')}' must be the region of the service attachment "
            f"({region})."
        )
    body["serviceAttachment"] = attachment.path
    others = [r.body for r in cloud.store.children("apigee", call.path)]
    others += [
        op.payload
        for op in cloud.ops.under("apigee", f"{org.path}/operations")
        if not op.done and op.collection == ENDPOINT_ATTACHMENTS and isinstance(op.payload, dict)
    ]
    if any(o.get("serviceAttachment") == attachment.path for o in others):
        raise errors.already_exists(
            f"an endpoint attachment to {attachment.path} already exists in organization "
            f"{org.body['name']}; there can be only one per service attachment."
        )
    body["host"] = _endpoint_host(cloud, org)


def connection_state(cloud: Cloud, tenant: str, attachment: dict[str, Any] | None) -> str:
    """What a service attachment makes of a connection from the tenant project."""
    if attachment is None:
        return "UNAVAILABLE"
    if attachment.get("connectionPreference") == "ACCEPT_AUTOMATIC":
        return "ACCEPTED"
    names = {tenant, cloud.project_number(tenant)}
    if names & set(attachment.get("consumerRejectLists") or []):
        return "REJECTED"
    accepted = {str(a.get("projectIdOrNum")) for a in attachment.get("consumerAcceptLists") or []}
    return "ACCEPTED" if names & accepted else "PENDING"


@RULES.on_read(ENDPOINT_ATTACHMENTS)
def _connection_state(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    org = cloud.store.get("apigee", "/".join(res.path.split("/")[:2]))
    target = cloud.store.get("compute", body.get("serviceAttachment", ""))
    tenant = org.body["apigeeProjectId"] if org else ""
    state = connection_state(cloud, tenant, target.body if target else None)
    if (state == "ACCEPTED" and target is not None
            and faults.has_limited_capacity(cloud.faults, target.path)):
        state = "ACCEPTED_LIMITED_CAPACITY"
    body["connectionState"] = state
    return body


# --- DNS zones ------------------------------------------------------------------------------


@RULES.on_create(DNS_ZONES)
def _dns_zone(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    if not str(body.get("domain") or ""):
        raise errors.invalid("domain must be set.")
    peering = body.get("peeringConfig") or {}
    project, network = peering.get("targetProjectId"), peering.get("targetNetworkId")
    if not project or not network:
        raise errors.invalid("peeringConfig.targetProjectId and targetNetworkId must be set.")
    if cloud.store.get("compute", f"projects/{project}/global/networks/{network}") is None:
        raise errors.invalid(
            f"peeringConfig: network '{network}' not found in project '{project}'."
        )
