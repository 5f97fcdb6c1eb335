"""Compute Engine v1: its conventions (selfLinks, `compute#operation`, JSON merge patch,
fingerprints) and the networking rules the reference architectures meet."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import TYPE_CHECKING, Any

from google_facts import discovery
from provision_emulator import catalog, errors, filters, formats, generic, schemas
from provision_emulator.apis import ipam
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.errors import ApiError
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud
    from provision_emulator.refs import Ref

BASE_URL = "https://www.googleapis.com/compute/v1/"
NAME = r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
PROXY_ONLY = frozenset({"REGIONAL_MANAGED_PROXY", "INTERNAL_HTTPS_LOAD_BALANCER"})
# "The proxy-only subnet must provide 64 or more IP addresses" (C25).
PROXY_ONLY_LONGEST = 26
# Subnet purposes whose addresses no forwarding rule may take (C1, C2).
NOT_FOR_RULES = frozenset({*PROXY_ONLY, "GLOBAL_MANAGED_PROXY", "PRIVATE_SERVICE_CONNECT"})
MANAGED_PROXY = PROXY_ONLY | {"GLOBAL_MANAGED_PROXY"}
INTERNAL_SCHEMES = frozenset({"INTERNAL", "INTERNAL_MANAGED", "INTERNAL_SELF_MANAGED"})
PENDING_SECONDS = 1.0  # simulated: how long an operation reports PENDING before RUNNING


def self_link(path: str) -> str:
    return BASE_URL + path


def path_of(link: Any) -> str:
    """A compute resource path from its stored self-link."""
    return str(link or "").removeprefix(BASE_URL)


def stored(cloud: Cloud, link: Any) -> Resource | None:
    """The stored compute resource a self-link names, if any."""
    return cloud.store.get("compute", path_of(link)) if isinstance(link, str) and link else None


def scope(path: str) -> tuple[str, str] | None:
    """("regions", "us-central1") for a regional path, ("zones", z) for zonal, None if global."""
    segments = path.split("/")
    if len(segments) > 3 and segments[2] in ("regions", "zones"):
        return segments[2], segments[3]
    return None


def region_path(path: str) -> str:
    """"projects/P/regions/R" of a regional resource's path."""
    return "/".join(path.split("/")[:4])


def region_of(path: str) -> str | None:
    found = scope(path)
    return found[1] if found and found[0] == "regions" else None


def last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def invalid_field(field: str, value: Any, message: str) -> ApiError:
    return errors.invalid(f"Invalid value for field 'resource.{field}': '{value}'. {message}")


def required_field(field: str) -> ApiError:
    return errors.invalid(f"Required field 'resource.{field}' not specified")


def label_fingerprint(labels: dict[str, str]) -> str:
    return formats.fingerprint("labels", json.dumps(labels, sort_keys=True))


def condition_not_met(message: str) -> ApiError:
    return ApiError(412, message, reason="conditionNotMet", status="FAILED_PRECONDITION")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch, which compute's PATCH methods follow."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class ComputeRules(ApiRules):
    # Compute's protos declare enums as strings: its clients never ask for numbers.
    numeric_enums = False
    # A regional managed instance group's instance group (instance_groups.py).
    made_alongside = frozenset({"regionInstanceGroups"})

    def resource_id(self, call: Call, coll: Collection, body: dict[str, Any]) -> str:
        name = body.get("name") or ""
        if not name:
            raise required_field("name")
        if not re.fullmatch(NAME, name):
            raise invalid_field("name", name, f"Must be a match of regex '(?:{NAME})'")
        return name

    def new_resource(
        self, cloud: Cloud, call: Call, coll: Collection, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        props = schemas.properties("compute", coll.schema) if coll.schema else frozenset()
        out = dict(body)
        fills: dict[str, Any] = {
            "kind": schemas.compute_kind(coll.schema) if coll.schema else None,
            "id": formats.numeric_id("compute", path, call.seq, call.now),
            "creationTimestamp": formats.compute_time(call.now),
            "selfLink": self_link(path),
            "fingerprint": formats.fingerprint("compute", path, call.seq),
            "labelFingerprint": label_fingerprint(body.get("labels") or {}),
        }
        where = scope(path)
        if where is not None:
            singular = where[0][:-1]  # "region" / "zone"
            fills[singular] = self_link("/".join(path.split("/")[:4]))
        out.update({k: v for k, v in fills.items() if k in props and v is not None})
        return out

    def updated_resource(
        self, cloud: Cloud, call: Call, coll: Collection, old: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        out = dict(new)
        if "fingerprint" in old:
            out["fingerprint"] = formats.fingerprint("compute", call.path, call.seq)
        return out

    def apply_update(
        self, call: Call, coll: Collection, old: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        self._check_fingerprint(coll, old, body)
        if call.method.name == "patch":
            return merge_patch(old, body)
        return {**schemas.server_fields("compute", coll.schema, old), **body}

    @staticmethod
    def _check_fingerprint(coll: Collection, old: dict[str, Any], body: dict[str, Any]) -> None:
        if coll.schema is None or "fingerprint" not in old:
            return
        prop = discovery.schema("compute", coll.schema)["properties"].get("fingerprint", {})
        given = body.get("fingerprint")
        # The schema says where Google insists on one ("must be provided in order to update").
        required = "must be provided" in prop.get("description", "")
        if (given is None and required) or (given is not None and given != old["fingerprint"]):
            raise condition_not_met(
                "Supplied fingerprint does not match current metadata fingerprint."
            )

    def list_response(
        self, call: Call, coll: Collection, items: list[dict[str, Any]], token: str | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": schemas.compute_kind(call.method.response) if call.method.response else None,
            "id": call.path,
        }
        if items:
            out["items"] = items
        out["selfLink"] = self_link(call.path)
        if token:
            out["nextPageToken"] = token
        return {k: v for k, v in out.items() if v is not None}

    def implicit(self, cloud: Cloud, path: str, coll: Collection) -> bool:
        # Public images live in Google's image projects (debian-cloud, cos-cloud, ...).
        segments = path.split("/")
        return coll.name == "images" and segments[1].endswith("-cloud")

    def expand_reference(self, call: Call, value: str) -> str:
        if value.startswith(("global/", "regions/", "zones/")) and call.project:
            return f"projects/{call.project}/{value}"
        return value

    def normalize_reference(self, call: Call, ref: Ref, value: str) -> str:
        return self_link(ref.path) if ref.api == "compute" else value

    def not_found(self, path: str, coll: Collection | None = None) -> ApiError:
        return errors.not_found(f"The resource '{path}' was not found")

    def already_exists(self, path: str, coll: Collection) -> ApiError:
        return errors.already_exists(f"The resource '{path}' already exists")

    def busy(self, path: str, op: Operation) -> ApiError:
        return ApiError(400, f"The resource '{path}' is not ready", reason="resourceNotReady")

    def missing_reference(self, call: Call, ref: Ref) -> ApiError:
        return self.not_found(ref.path)

    def in_use(self, target: Resource, referrer: Resource) -> ApiError:
        kind = str(target.body.get("kind") or target.collection).split("#")[-1]
        return ApiError(
            400,
            f"The {schemas.snake(kind)} resource '{target.path}' is already being used by "
            f"'{referrer.path}'",
            reason="resourceInUseByAnotherResource",
        )

    def stale_policy(self, path: str) -> ApiError:
        return condition_not_met(
            "There were concurrent policy changes. Please retry the whole read-modify-write "
            "with exponential backoff."
        )

    def operation_path(self, cloud: Cloud, call: Call, target: str) -> str:
        segments = target.split("/")
        where = scope(target)
        base = "/".join(segments[:4]) if where else "/".join(segments[:2]) + "/global"
        h = formats.digest("operation", target, call.seq, call.now).hex()
        return f"{base}/operations/operation-{int(call.now * 1000)}-{h[:13]}-{h[13:21]}-{h[21:29]}"

    def render_operation(self, cloud: Cloud, op: Operation, int_enums: bool) -> dict[str, Any]:
        now = cloud.now()
        span = max(op.end - op.start, 1e-9)
        if op.done:
            status, progress = "DONE", 100
        elif now < op.start + min(cloud.scaled(PENDING_SECONDS), span / 2):
            status, progress = "PENDING", 0
        else:
            status, progress = "RUNNING", min(99, int(100 * (now - op.start) / span))
        out: dict[str, Any] = {
            "kind": "compute#operation",
            "id": formats.numeric_id("operation", op.path),
            "name": last(op.path),
            "operationType": op.verb,
            "targetLink": self_link(op.target),
            "status": status,
            "user": "emulator@provision.local",
            "progress": progress,
            "insertTime": formats.compute_time(op.start),
            "selfLink": self_link(op.path),
        }
        if op.info.get("target_id"):
            out["targetId"] = op.info["target_id"]
        if status != "PENDING":
            out["startTime"] = formats.compute_time(op.start)
        if op.done:
            out["endTime"] = formats.compute_time(op.end)
        where = scope(op.path)
        if where is not None:
            out[where[0][:-1]] = self_link("/".join(op.path.split("/")[:4]))
        if op.done and op.error:
            code = schemas.snake(op.error["reason"]).upper()
            out["error"] = {"errors": [{"code": code, "message": op.error["message"]}]}
            out["httpErrorStatusCode"] = op.error["http"]
            out["httpErrorMessage"] = op.error["status"].replace("_", " ")
        return out


RULES = ComputeRules("compute")


# --- aggregatedList: every scope's resources of one kind -------------------------------------


def aggregated_list(cloud: Cloud, call: Call) -> dict[str, Any]:
    coll = catalog.collections("compute")[call.method.resource]
    kind = schemas.compute_kind(coll.schema) if coll.schema else None
    project = call.params["project"]
    doc = discovery.document("compute")
    scoped = doc["schemas"][call.method.response]["properties"]["items"]["additionalProperties"]
    field = next(k for k in doc["schemas"][scoped["$ref"]]["properties"] if k != "warning")
    keep = filters.parse(call.arg("filter"))
    groups: dict[str, list[dict[str, Any]]] = {}
    for other in catalog.collections("compute").values():
        if other.schema is None or schemas.compute_kind(other.schema) != kind:
            continue
        for res in cloud.store.in_collection("compute", other.name):
            segments = res.path.split("/")
            if segments[1] != project or not cloud.visible(res, call.now):
                continue
            where = scope(res.path)
            key = f"{where[0]}/{where[1]}" if where else "global"
            body = RULES.render(cloud, res)
            if keep(body):
                groups.setdefault(key, []).append(body)
    return {
        "kind": schemas.compute_kind(call.method.response),
        "id": call.path,
        "items": {key: {field: items} for key, items in sorted(groups.items())},
        "selfLink": self_link(call.path),
    }


def set_labels(cloud: Cloud, call: Call) -> dict[str, Any]:
    """Every `setLabels`: labels replace the old ones if `labelFingerprint` is current."""
    coll = catalog.collections("compute")[call.method.resource]
    res = cloud.store.get("compute", call.path)
    if res is None:
        raise RULES.not_found(call.path, coll)
    generic.refuse_if_busy(cloud, call, call.path)
    body = call.body or {}
    current = res.body.get("labelFingerprint", label_fingerprint(res.body.get("labels") or {}))
    if body.get("labelFingerprint") != current:
        raise condition_not_met("Labels fingerprint either invalid or resource labels have changed")
    new = dict(res.body)
    labels = body.get("labels") or {}
    if labels:
        new["labels"] = labels
    else:
        new.pop("labels", None)
    new["labelFingerprint"] = label_fingerprint(labels)
    op = cloud.start_operation(
        call, target=res.path, collection=coll.name, effect="put", payload=new, refs=res.refs
    )
    return RULES.render_operation(cloud, op, call.int_enums)


for _method in discovery.methods("compute"):
    if _method.name == "aggregatedList":
        RULES.handler(_method.id)(aggregated_list)
    elif _method.name == "setLabels":
        RULES.handler(_method.id)(set_labels)


# --- helpers over the store ----------------------------------------------------------------


def _resolve(cloud: Cloud, call: Call, body: dict[str, Any], field: str) -> Resource | None:
    value = body.get(field)
    return cloud.resolve(call, value) if isinstance(value, str) and value else None


def in_network(cloud: Cloud, network: Resource, collection: str) -> list[dict[str, Any]]:
    """Bodies of `collection` resources in a network, stored or being created."""
    link = self_link(network.path)
    bodies = [
        r.body for r in cloud.store.referrers("compute", network.path) if r.collection == collection
    ]
    bodies += [
        op.payload
        for op in cloud.ops.in_flight()
        if op.collection == collection
        and op.effect == "put"
        and isinstance(op.payload, dict)
        and op.payload.get("network") == link
    ]
    return bodies


def _ranges(subnet: dict[str, Any]) -> list[str]:
    return [subnet.get("ipCidrRange", "")] + [
        r.get("ipCidrRange", "") for r in subnet.get("secondaryIpRanges", [])
    ]


def _used_in_subnet(cloud: Cloud, subnet: Resource) -> set[str]:
    link = self_link(subnet.path)
    bodies = [r.body for r in cloud.store.referrers("compute", subnet.path)]
    bodies += [
        op.payload
        for op in cloud.ops.in_flight()
        if isinstance(op.payload, dict) and op.payload.get("subnetwork") == link
    ]
    return {b.get("IPAddress") or b.get("address") for b in bodies} - {None}


def _active_proxy_subnet(cloud: Cloud, network: Resource, region: str) -> dict[str, Any] | None:
    for subnet in in_network(cloud, network, "subnetworks"):
        if (
            subnet.get("purpose") in PROXY_ONLY
            and subnet.get("role") == "ACTIVE"
            and last(subnet.get("region", "")) == region
        ):
            return subnet
    return None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# --- rules per collection --------------------------------------------------------------------


@RULES.on_create("networks")
def _network(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    body.setdefault("routingConfig", {}).setdefault("routingMode", "REGIONAL")
    body.setdefault("networkFirewallPolicyEnforcementOrder", "AFTER_CLASSIC_FIREWALL")
    body.setdefault("mtu", 1460)


@RULES.on_read("networks")
def _network_subnets(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    subnets = [
        self_link(r.path)
        for r in cloud.store.referrers("compute", res.path)
        if r.collection == "subnetworks"
    ]
    if subnets:
        body["subnetworks"] = subnets
    return body


@RULES.on_create("subnetworks")
def _subnetwork(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    cidr = body.get("ipCidrRange")
    if not cidr:
        raise required_field("ipCidrRange")
    if ipam.network(cidr) is None:
        # Google's words for a range with host bits set or no valid prefix (constraint C22 of
        # docs/emulator-fidelity.md).
        raise invalid_field("ipCidrRange", cidr, "Must be a CIDR address range.")
    network = _resolve(cloud, call, body, "network")
    if network is None:
        raise required_field("network")
    region = region_of(call.path) or ""
    purpose = body.setdefault("purpose", "PRIVATE")
    if purpose in MANAGED_PROXY:
        if ipam.network(cidr).prefixlen > PROXY_ONLY_LONGEST:  # type: ignore[union-attr]
            raise invalid_field(  # C25
                "ipCidrRange", cidr, f"A subnetwork with purpose {purpose} needs at least 64 "
                f"addresses (a /{PROXY_ONLY_LONGEST} or larger range).")
        role = body.get("role")
        if not role:
            raise invalid_field(
                "role",
                "UNSPECIFIED_ROLE",
                f"Subnetwork role must be specified when purpose set to {purpose}.",
            )
        if body.get("logConfig") is not None:
            raise invalid_field(
                "logConfig",
                json.dumps(body["logConfig"]),
                f"Invalid field set in subnetwork with purpose {purpose}.",
            )
        clash = _active_proxy_subnet(cloud, network, region) if purpose in PROXY_ONLY else None
        if clash is not None and role == "ACTIVE":
            raise invalid_field(
                "role",
                role,
                f"An active proxy-only subnetwork '{clash.get('name')}' already exists in "
                f"region '{region}' of network '{network.body.get('name')}'.",
            )
    else:
        body.setdefault("privateIpGoogleAccess", False)
        body["gatewayAddress"] = ipam.gateway(cidr)
    body.setdefault("stackType", "IPV4_ONLY")
    for mine in _ranges(body):
        mine_net = ipam.network(mine)
        for other in in_network(cloud, network, "subnetworks"):
            if any(
                (theirs := ipam.network(r)) is not None
                and mine_net is not None
                and mine_net.overlaps(theirs)
                for r in _ranges(other)
            ):
                raise invalid_field(
                    "ipCidrRange",
                    mine,
                    f"Invalid IPCidrRange: {mine} conflicts with existing subnetwork "
                    f"'{other.get('name')}' in region '{last(other.get('region', ''))}'.",
                )


@RULES.on_create("firewalls")
def _firewall(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    # Google puts a rule without a network on the project's "default" network.
    body.setdefault("network", self_link(f"projects/{call.project}/global/networks/default"))
    body.setdefault("direction", "INGRESS")
    body.setdefault("priority", 1000)
    body.setdefault("disabled", False)
    _check_firewall(body)


@RULES.on_update("firewalls")
def _firewall_update(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    _check_firewall(body)


_PORTS = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


def _check_firewall(body: dict[str, Any]) -> None:
    """The Firewall schema's documented bounds (C34-C36): priority 0-65535; ports "N" or "N-M"
    within 0-65535 (Google: "Invalid port range specification."); source and destination
    ranges CIDRs ("Must be a CIDR address range.")."""
    priority = body.get("priority")
    if isinstance(priority, int) and not 0 <= priority <= 65535:
        raise invalid_field("priority", priority, "Must be less than or equal to 65535."
                            if priority > 65535 else "Must be greater than or equal to 0.")
    for verdict in ("allowed", "denied"):
        for i, rule in enumerate(body.get(verdict) or []):
            for j, ports in enumerate(rule.get("ports") or []):
                found = _PORTS.match(str(ports))
                low, high = (int(found.group(1)), int(found.group(2) or found.group(1))) if (
                    found) else (1, 0)
                if not (found and low <= high <= 65535):
                    raise invalid_field(f"{verdict}[{i}].ports[{j}]", ports,
                                        "Invalid port range specification.")
    for field in ("sourceRanges", "destinationRanges"):
        for i, cidr in enumerate(body.get(field) or []):
            if ipam.network(str(cidr)) is None:
                raise invalid_field(f"{field}[{i}]", cidr, "Must be a CIDR address range.")


@RULES.on_create("forwardingRules", "globalForwardingRules")
def _forwarding_rule(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    scheme = body.setdefault("loadBalancingScheme", "EXTERNAL")
    body.setdefault("IPProtocol", "TCP")
    region = region_of(call.path)
    subnet = _resolve(cloud, call, body, "subnetwork")
    if subnet is not None and subnet.body.get("purpose") in NOT_FOR_RULES:
        # "The IP address for the load balancer's forwarding rule doesn't come from the
        # proxy-only subnet"; PSC NAT subnets "cannot be used for ... forwarding rules".
        raise invalid_field("subnetwork", body.get("subnetwork"), "A forwarding rule's "
                            f"subnetwork cannot have purpose {subnet.body.get('purpose')}.")
    network = _resolve(cloud, call, body, "network")
    if network is None and subnet is not None:
        network = cloud.resolve(call, subnet.body.get("network", ""))
    if network is not None:
        body.setdefault("network", self_link(network.path))
    if scheme == "INTERNAL_MANAGED" and region:
        if network is None:
            raise required_field("network")
        if _active_proxy_subnet(cloud, network, region) is None:
            raise invalid_field(
                "target",
                body.get("target", ""),
                "An active proxy-only subnetwork is required in the same region and VPC as the "
                "forwarding rule.",
            )
    if body.get("backendService") and scheme == "INTERNAL":
        _check_passthrough_ports(body)
    address = body.get("IPAddress")
    if address and not _is_ip(address):
        reserved = cloud.resolve(call, address)
        if reserved is None:  # neither an address nor one reserved (C4)
            raise invalid_field("IPAddress", address, "Invalid IP address specified.")
        body["IPAddress"] = reserved.body.get("address")
    elif address and scheme in INTERNAL_SCHEMES and network is not None:
        ranges = [ipam.network(r) for s in in_network(cloud, network, "subnetworks")
                  for r in _ranges(s)]
        if not any(n is not None and ipaddress.ip_address(address) in n for n in ranges):
            # Google's words (C3 of docs/emulator-fidelity.md).
            raise invalid_field("IPAddress", address, f"Address '{address}' is not in the "
                                f"subnetwork ranges of network '{network.body.get('name')}'.")
    elif not address and scheme in INTERNAL_SCHEMES and region:
        if subnet is None and network is not None:
            subnet = next(
                (
                    r
                    for r in cloud.store.referrers("compute", network.path)
                    if r.collection == "subnetworks"
                    and r.body.get("purpose", "PRIVATE") == "PRIVATE"
                    and region_of(r.path) == region
                ),
                None,
            )
        if subnet is None:
            raise required_field("subnetwork")
        body["subnetwork"] = self_link(subnet.path)
        body["IPAddress"] = ipam.free_host(
            subnet.body["ipCidrRange"], _used_in_subnet(cloud, subnet)
        )
    elif not address:
        body["IPAddress"] = ipam.public_address((), "forwardingRule", call.path, body.get("name"))
    if scheme not in INTERNAL_SCHEMES:
        body.setdefault("networkTier", "PREMIUM")


def _check_passthrough_ports(body: dict[str, Any]) -> None:
    """ForwardingRule.ports: "You can specify a list of up to five ports" (the discovery
    document); observed: "Too many ports specified. Maximum is 5." (banzaicloud/koperator#523)
    and "Forwarding rules with backend services must specify at least one port."
    (terraform-google-modules/terraform-google-lb-internal#30)."""
    ports = body.get("ports") or []
    if not ports and not body.get("allPorts"):
        raise invalid_field("ports[0]", "", "Forwarding rules with backend services must "
                            "specify at least one port.")
    if len(ports) > 5:
        raise invalid_field("ports[5]", ports[5], "Too many ports specified. Maximum is 5.")


@RULES.on_create("addresses", "globalAddresses")
def _address(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    kind = body.setdefault("addressType", "EXTERNAL")
    body["status"] = "RESERVED"
    given = body.get("address")
    if given and not _is_ip(given):
        raise invalid_field("address", given, "Invalid IP address.")
    purpose = body.get("purpose")
    if purpose == "VPC_PEERING" and kind != "INTERNAL":
        raise invalid_field("purpose", purpose,  # C46
                            "The field cannot be specified with external address.")
    if purpose == "VPC_PEERING":
        prefix = body.get("prefixLength")
        if not prefix:
            raise required_field("prefixLength")
        if not given:
            network = _resolve(cloud, call, body, "network")
            taken = [
                f"{b.get('address')}/{b.get('prefixLength')}"
                for b in (in_network(cloud, network, "globalAddresses") if network else [])
            ]
            taken += [
                r
                for s in (in_network(cloud, network, "subnetworks") if network else [])
                for r in _ranges(s)
            ]
            block = ipam.free_block(int(prefix), taken)
            if block is None:
                raise invalid_field("prefixLength", prefix, "No free range of this size.")
            body["address"] = block.split("/")[0]
    elif kind == "INTERNAL" and not given:
        subnet = _resolve(cloud, call, body, "subnetwork")
        if subnet is None:
            raise required_field("subnetwork")
        body["address"] = ipam.free_host(subnet.body["ipCidrRange"], _used_in_subnet(cloud, subnet))
    elif not given:
        body["address"] = ipam.public_address((), "address", call.path, body.get("name"))
    if kind == "INTERNAL" and region_of(call.path):
        body.setdefault("purpose", "GCE_ENDPOINT")
    if kind == "EXTERNAL":
        body.setdefault("networkTier", "PREMIUM")


@RULES.on_read("addresses", "globalAddresses")
def _address_users(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    users = [self_link(r.path) for r in cloud.store.referrers("compute", res.path)]
    if users:
        body["users"] = users
        body["status"] = "IN_USE"
    return body


# A serverless NEG's targets: "Only one of cloudRun, appEngine, cloudFunction or
# serverlessDeployment may be set" (the NetworkEndpointGroup schema; C7).
SERVERLESS_TARGETS = ("cloudRun", "appEngine", "cloudFunction", "serverlessDeployment")


@RULES.on_create("networkEndpointGroups", "regionNetworkEndpointGroups")
def _serverless_neg(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    if body.get("networkEndpointType") != "SERVERLESS":
        return
    targets = [t for t in SERVERLESS_TARGETS if body.get(t)]
    if len(targets) > 1:
        raise invalid_field(targets[1], "", f"Only one of {', '.join(SERVERLESS_TARGETS)} may "
                            "be set.")
    # network "cannot be set for NEGs with networkEndpointType set to SERVERLESS", and
    # defaultPort "must not be specified" (the NetworkEndpointGroup schema; C8).
    for field in ("network", "defaultPort"):
        if body.get(field):
            raise invalid_field(field, str(body[field]), f"{field} cannot be set for a network "
                                "endpoint group of type SERVERLESS.")


@RULES.on_create("targetHttpsProxies", "regionTargetHttpsProxies")
def _https_proxy(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    """Google (TargetHttpsProxy.sslCertificates; C13, C15): "At least one SSL certificate must
    be specified", "up to 15 Classic SSL Certificates or up to 100 Certificate Manager
    Certificates", "Mixing Classic Certificates and Certificate Manager Certificates is not
    allowed", the latter named "//certificatemanager.googleapis.com/projects/..."; a
    certificate map stands for them."""
    if body.get("certificateMap"):
        return
    certificates = [str(c) for c in body.get("sslCertificates") or []]
    managed = [c for c in certificates if "certificatemanager." in c]
    if managed and len(managed) != len(certificates):
        raise invalid_field("sslCertificates", "", "Mixing Classic Certificates and "
                            "Certificate Manager Certificates is not allowed.")
    if not 1 <= len(certificates) <= (100 if managed else 15):
        raise invalid_field("sslCertificates", "", "At least one SSL certificate must be "
                            "specified, and at most 15 (100 of Certificate Manager).")


# Network endpoint groups whose backend services take no health checks, as Google names them.
UNCHECKED_NEGS = {"SERVERLESS": "Serverless", "PRIVATE_SERVICE_CONNECT": "Private Service Connect"}


def _check_backends(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    groups = [cloud.resolve(call, b["group"]) for b in body.get("backends", []) if b.get("group")]
    for i, group in enumerate(groups):
        if (group is not None and group.body.get("networkEndpointType") == "SERVERLESS"
                and body.get("loadBalancingScheme") in ("INTERNAL", "EXTERNAL")
                and body.get("protocol") in ("TCP", "UDP", "SSL", "UNSPECIFIED")):
            # "Serverless NEGs are not supported by proxy Network Load Balancers and
            # passthrough Network Load Balancers" (C12).
            raise invalid_field(f"backends[{i}].group", body["backends"][i]["group"],
                                "Serverless network endpoint groups can only back Application "
                                "Load Balancers (HTTP, HTTPS or HTTP2 backend services).")
        kind = UNCHECKED_NEGS.get(group.body.get("networkEndpointType", "")) if group else None
        if kind and body.get("healthChecks"):
            raise invalid_field(
                "healthChecks",
                "",
                f"A backend service cannot have a healthcheck with {kind} network endpoint "
                "group backends.",
            )


@RULES.on_create("backendServices", "regionBackendServices")
def _backend_service(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    body.setdefault("loadBalancingScheme", "EXTERNAL")
    body.setdefault("protocol", "HTTP")
    body.setdefault("timeoutSec", 30)
    _check_backends(cloud, call, body)


@RULES.on_update("backendServices", "regionBackendServices")
def _backend_service_update(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    _check_backends(cloud, call, body)


@RULES.on_create("serviceAttachments")
def _service_attachment(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    if not body.get("natSubnets"):
        raise required_field("natSubnets")
    for link in body["natSubnets"]:
        subnet = cloud.resolve(call, link)
        if subnet is not None and subnet.body.get("purpose") != "PRIVATE_SERVICE_CONNECT":
            raise invalid_field(
                "natSubnets",
                link,
                "The subnetwork must have purpose PRIVATE_SERVICE_CONNECT.",
            )
        users = [r for r in cloud.store.referrers("compute", subnet.path)
                 if r.collection == "serviceAttachments"] if subnet is not None else []
        if users:
            # "a NAT subnet cannot be used in more than one service attachment" (C28).
            raise invalid_field("natSubnets", link, "The subnetwork is already used by service "
                                f"attachment '{users[0].body.get('name')}'.")
    number = formats.numeric_id("psc", call.path, call.seq)
    body["pscServiceAttachmentId"] = {"high": number[:9], "low": number[9:]}
    body.setdefault("enableProxyProtocol", False)
