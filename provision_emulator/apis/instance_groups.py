"""Instance templates, regional managed instance groups and their autoscalers, registered on
compute's rules.

A managed instance group's instances are not stored: they follow, on every read, from the
group (its size, or its autoscaler's recommendation; its template; its zones) and the clock, as
Google's group manager keeps them. Each is PROVISIONING, then STAGING, then RUNNING, at Google's
pace (operations.DURATIONS "compute.instances"), from the moment the group needed it: when the
group was made, when it grew (a resize, a patch of its size, its autoscaler), or when a
proactive update replaced it; it runs the template the group had then. Their addresses are
taken from the top of the subnet down, so that they never meet the forwarding rules' (taken
from the bottom up). Instances made with instances.insert are stored, and read as stored.

The group's instance group (`regionInstanceGroups`, named as the manager) is stored when the
manager lands and removed with it: backend services name it.

The emulator's instances run no software: a health check finds one healthy once it is RUNNING
and the firewall admits Google's probes (health_checks.py).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provision_emulator import formats, generic, operations
from provision_emulator.apis import compute
from provision_emulator.call import Call
from provision_emulator.errors import ApiError
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

TEMPLATES = "instanceTemplates"
MANAGERS = "regionInstanceGroupManagers"
GROUPS = "regionInstanceGroups"
AUTOSCALERS = "regionAutoscalers"
# Kept beside the group, never answered: when each instance (by index) was last needed (None:
# when the group was made), and the group's templates with when each took over.
BORN = "_born"
TEMPLATES_SINCE = "_templates"
# The zones a regional group spreads over when its distributionPolicy names none. Google picks
# them; b and c are zones of nearly every region, which is all the emulator needs.
DEFAULT_ZONES = ("b", "c")
NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("_")}


# --- instance templates ------------------------------------------------------------------------


@compute.RULES.on_create(TEMPLATES)
def _template(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    """The discovery document's rules for an instance template's properties:
    InstanceProperties.machineType is required for insert; a boot disk needs "one of
    initializeParams.sourceImage or initializeParams.sourceSnapshot or disks.source"; an
    interface with neither network nor subnetwork is on "the default network
    global/networks/default". Google's words for the first two refusals are not known: these
    are compute's required-field form. (Templates have no patch: they cannot change.)"""
    props = body.get("properties")
    if not isinstance(props, dict) or not props.get("machineType"):
        raise compute.required_field("properties.machineType")
    for i, disk in enumerate(props.get("disks") or []):
        params = disk.get("initializeParams") or {}
        if disk.get("boot") and not (disk.get("source") or params.get("sourceImage")
                                     or params.get("sourceSnapshot")):
            raise compute.required_field(f"properties.disks[{i}].initializeParams.sourceImage")
    interfaces = props.setdefault("networkInterfaces", [{}])
    for iface in interfaces:
        subnet = cloud.resolve(call, iface.get("subnetwork") or "")
        if subnet is not None:  # the subnetwork's network, as instances read back
            iface.setdefault("network", subnet.body.get("network"))
        if not (iface.get("network") or iface.get("subnetwork")):
            iface["network"] = compute.self_link(f"projects/{call.project}/global/networks/default")


@compute.RULES.handler("compute.images.getFromFamily")
def image_from_family(cloud: Cloud, call: Call) -> dict[str, Any]:
    """"Returns the latest image that is part of an image family" (images.getFromFamily): for
    Google's public image projects (debian-cloud, ...), whose images the emulator takes as
    there, one image named after the family."""
    project, family = call.params["project"], call.params["family"]
    if not project.endswith("-cloud"):
        raise compute.RULES.not_found(f"projects/{project}/global/images/family/{family}")
    path = f"projects/{project}/global/images/{family}-v20261101"
    return {"kind": "compute#image", "id": formats.numeric_id("compute", path),
            "name": path.rsplit("/", 1)[1], "family": family, "status": "READY",
            "architecture": "X86_64", "diskSizeGb": "10",
            "selfLink": compute.self_link(path)}


def _interface(cloud: Cloud, template: dict[str, Any]) -> tuple[Resource | None, str]:
    """The first interface's subnetwork (stored) and network path."""
    iface = template["properties"]["networkInterfaces"][0]
    subnet = compute.stored(cloud, iface.get("subnetwork"))
    network = iface.get("network") or (subnet.body.get("network") if subnet else "")
    return subnet, compute.path_of(network)


# --- managed instance groups -------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One instance a managed instance group keeps."""

    name: str
    zone: str
    path: str
    since: float  # when the group started creating it
    status: str  # PROVISIONING, STAGING, RUNNING
    running_since: float | None
    ip: str | None
    network: str
    tags: frozenset[str]
    template: str


def _zones(manager: dict[str, Any], region: str) -> list[str]:
    given = [compute.last(z.get("zone", "")) for z in
             (manager.get("distributionPolicy") or {}).get("zones") or []]
    return given or [f"{region}-{z}" for z in DEFAULT_ZONES]


def _template_of(manager: dict[str, Any]) -> str:
    versions = manager.get("versions") or []
    return versions[0].get("instanceTemplate", "") if versions else manager.get(
        "instanceTemplate", "")


def autoscaler_of(cloud: Cloud, manager: Resource) -> Resource | None:
    return next((r for r in cloud.store.referrers("compute", manager.path)
                 if r.collection == AUTOSCALERS), None)


def size(cloud: Cloud, manager: Resource) -> int:
    """Instances the group keeps: its autoscaler's recommendation (with no load, the minimum;
    Google's autoscaler "scales in to" minNumReplicas) unless its mode is OFF, else its
    targetSize."""
    scaler = autoscaler_of(cloud, manager)
    if scaler is not None and _policy(scaler.body).get("mode") != "OFF":
        return _minimum(scaler.body)
    return int(manager.body.get("targetSize") or 0)


def grow(body: dict[str, Any], old: int, new: int, now: float) -> None:
    """The instances from index `old` to `new` are needed from `now` on."""
    born = body.setdefault(BORN, [])
    born.extend([None] * max(0, new - len(born)))
    for i in range(old, new):
        born[i] = now


def members(cloud: Cloud, manager: Resource) -> list[Member]:
    body, now = manager.body, cloud.now()
    region = compute.region_of(manager.path) or ""
    project = manager.path.split("/")[1]
    zones = _zones(body, region)
    born_at = body.get(BORN) or []
    history = body.get(TEMPLATES_SINCE) or []
    running = cloud.scaled(operations.duration("compute", "instances", cloud.config.durations))
    templates: dict[str, tuple[Resource | None, str, frozenset[str]]] = {}
    out = []
    for i in range(size(cloud, manager)):
        born = (born_at[i] if i < len(born_at) else None) or manager.created
        link = next((t for since, t in reversed(history) if since <= born),
                    _template_of(body))
        if link not in templates:
            template = compute.stored(cloud, link)
            subnet, network = _interface(cloud, template.body) if template else (None, "")
            tags = frozenset(((template.body["properties"].get("tags") or {}).get("items") or [])
                             if template else ())
            templates[link] = (subnet, network, tags)
        _, network, tags = templates[link]
        zone = zones[i % len(zones)]
        name = f"{body.get('baseInstanceName')}-{_suffix(manager.path, i, born)}"
        age = now - born
        status = ("RUNNING" if age >= running else "STAGING" if age >= running / 2
                  else "PROVISIONING")
        out.append(Member(name, zone, f"projects/{project}/zones/{zone}/instances/{name}", born,
                          status, born + running if status == "RUNNING" else None, None,
                          network, tags, link))
    subnet = templates[_template_of(body)][0] if _template_of(body) in templates else None
    return _addressed(cloud, subnet, manager, out)


def _suffix(path: str, index: int, since: float) -> str:
    """Google names a group's instances baseInstanceName-xxxx (four random characters)."""
    digest = formats.digest("instance", path, index, since)
    return "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:4])


def _addressed(cloud: Cloud, subnet: Resource | None, manager: Resource,
               out: list[Member]) -> list[Member]:
    """Addresses from the top of the subnet down, the groups in the subnet in the order they
    were made."""
    if subnet is None:
        return out
    link = compute.self_link(subnet.path)
    earlier = 0
    for other in sorted(cloud.store.in_collection("compute", MANAGERS),
                        key=lambda r: (r.created, r.path)):
        if other.path == manager.path:
            break
        template = compute.stored(cloud, _template_of(other.body))
        if template and template.body["properties"]["networkInterfaces"][0].get(
                "subnetwork") == link:
            earlier += size(cloud, other)
    top = ipaddress.ip_network(subnet.body["ipCidrRange"]).broadcast_address - 2
    return [dataclasses.replace(m, ip=str(top - earlier - i)) for i, m in enumerate(out)]


@compute.RULES.on_create(MANAGERS)
def _manager(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    """targetSize is required for insert (the discovery document); a group needs a template
    to make instances with (its words unknown: compute's required-field form). Without a
    baseInstanceName the emulator names instances after the group (*ours*)."""
    if body.get("targetSize") is None:
        raise compute.required_field("targetSize")
    if not (body.get("instanceTemplate") or body.get("versions")):
        raise compute.required_field("instanceTemplate")
    body.setdefault("baseInstanceName", body["name"])
    # "[Output Only]" in the discovery document, yet taken at insert: the Terraform provider
    # sends a regional group's named ports there (and calls setNamedPorts only to change them).
    if (call.body or {}).get("namedPorts"):
        body["namedPorts"] = call.body["namedPorts"]
    _check_template(cloud, call, body)
    region = compute.region_of(call.path) or ""
    project = call.project
    policy = body.setdefault("distributionPolicy", {})
    policy.setdefault("zones", [{"zone": compute.self_link(f"projects/{project}/zones/{z}")}
                                for z in _zones(body, region)])
    policy.setdefault("targetShape", "EVEN")
    if not body.get("versions"):
        body["versions"] = [{"instanceTemplate": body["instanceTemplate"]}]
    body.setdefault("instanceTemplate", body["versions"][0]["instanceTemplate"])
    body.setdefault("updatePolicy", {"type": "OPPORTUNISTIC", "minimalAction": "REPLACE",
                                     "replacementMethod": "SUBSTITUTE"})


def _check_template(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    template = cloud.resolve(call, _template_of(body))
    if template is not None and template.collection != TEMPLATES:
        raise compute.invalid_field("instanceTemplate", _template_of(body),
                                    "Must be an instance template.")


@compute.RULES.on_update(MANAGERS)
def _manager_update(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    if call.method.name == "patch" and "instanceTemplate" in (call.body or {}) and not (
            call.body or {}).get("versions"):
        body["versions"] = [{"instanceTemplate": body["instanceTemplate"]}]
    _check_template(cloud, call, body)
    before = size(cloud, res)
    if _template_of(body) != _template_of(res.body):
        body["instanceTemplate"] = _template_of(body)
        # New instances are of the new template; a proactive update replaces every one.
        body[TEMPLATES_SINCE] = [*(res.body.get(TEMPLATES_SINCE) or [
            [0.0, _template_of(res.body)]]), [call.now, _template_of(body)]]
        if (body.get("updatePolicy") or {}).get("type") == "PROACTIVE":
            grow(body, 0, before, call.now)
    grow(body, before, size(cloud, dataclasses.replace(res, body=body)), call.now)


@compute.RULES.on_stored(MANAGERS)
def _group_of(cloud: Cloud, res: Resource) -> None:
    """The instance group the manager keeps, stored beside it once the manager is (its
    `instanceGroup` names it then: a reference checked at the request would find nothing)."""
    path = f"{compute.region_path(res.path)}/instanceGroups/{res.body['name']}"
    if "instanceGroup" not in res.body:
        cloud.put(dataclasses.replace(res, body={**res.body,
                                                 "instanceGroup": compute.self_link(path)}))
    old = cloud.store.get("compute", path)
    body = dict(old.body) if old else {
        "kind": "compute#instanceGroup",
        "id": formats.numeric_id("compute", path),
        "creationTimestamp": res.body.get("creationTimestamp"),
        "name": res.body["name"],
        "selfLink": compute.self_link(path),
        "region": res.body.get("region"),
        "fingerprint": formats.fingerprint("compute", path),
    }
    if res.body.get("namedPorts") and not old:
        body["namedPorts"] = res.body["namedPorts"]
    template = compute.stored(cloud, _template_of(res.body))
    if template is not None:
        subnet, network = _interface(cloud, template.body)
        body["network"] = compute.self_link(network)
        if subnet is not None:
            body["subnetwork"] = compute.self_link(subnet.path)
    cloud.put(Resource("compute", path, GROUPS, body, old.created if old else res.created))


@compute.RULES.on_removed(MANAGERS)
def _group_gone(cloud: Cloud, res: Resource) -> None:
    cloud.remove("compute", compute.path_of(res.body.get("instanceGroup")))


@compute.RULES.on_delete(MANAGERS)
def _manager_delete(cloud: Cloud, call: Call, res: Resource) -> None:
    """The group goes with its manager: not while a backend service or an autoscaler uses it."""
    group = compute.path_of(res.body.get("instanceGroup"))
    stored = cloud.store.get("compute", group)
    # (an update of the manager names its group, which then counts it among the group's users)
    users = [u for u in cloud.store.referrers("compute", group) if u.path != res.path] if (
        stored) else []
    if stored is not None and users:
        raise compute.RULES.in_use(stored, users[0])


def manager_of(cloud: Cloud, group: Resource) -> Resource | None:
    region = compute.region_of(group.path)
    project = group.path.split("/")[1]
    return cloud.store.get(
        "compute", f"projects/{project}/regions/{region}/instanceGroupManagers/"
        f"{group.body['name']}")


@compute.RULES.on_read(MANAGERS)
def _manager_read(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    kept = members(cloud, res)
    creating = sum(m.status != "RUNNING" for m in kept)
    body["targetSize"] = len(kept)
    body["currentActions"] = {
        **{action: 0 for action in ("abandoning", "creatingWithoutRetries", "deleting",
                                    "recreating", "refreshing", "restarting", "resuming",
                                    "starting", "stopping", "suspending", "verifying")},
        "creating": creating,
        "none": len(kept) - creating,
    }
    scaler = autoscaler_of(cloud, res)
    status: dict[str, Any] = {"isStable": creating == 0,
                              "versionTarget": {"isReached": creating == 0},
                              "stateful": {"hasStatefulConfig": False,
                                           "perInstanceConfigs": {"allEffective": True}}}
    if scaler is not None:
        status["autoscaler"] = compute.self_link(scaler.path)
    body["status"] = status
    group = compute.stored(cloud, body.get("instanceGroup"))
    if group is not None and group.body.get("namedPorts"):
        body["namedPorts"] = group.body["namedPorts"]
    return _public(body)


def _managed(cloud: Cloud, call: Call) -> list[Member]:
    res = generic.existing(cloud, call, call.path, generic.collection(call))
    return members(cloud, res)


@compute.RULES.handler("compute.regionInstanceGroupManagers.listManagedInstances")
def list_managed_instances(cloud: Cloud, call: Call) -> dict[str, Any]:
    out = [{
        "instance": compute.self_link(m.path),
        "id": formats.numeric_id("compute", m.path),
        "instanceStatus": m.status,
        "currentAction": "NONE" if m.status == "RUNNING" else "CREATING",
        "name": m.name,
        "version": {"instanceTemplate": m.template},
    } for m in _managed(cloud, call)]
    return {"managedInstances": out} if out else {}


@compute.RULES.handler("compute.regionInstanceGroupManagers.resize")
def resize(cloud: Cloud, call: Call) -> dict[str, Any]:
    res = generic.existing(cloud, call, call.path, generic.collection(call))
    generic.refuse_if_busy(cloud, call, res.path)
    scaler = autoscaler_of(cloud, res)
    if scaler is not None and _policy(scaler.body).get("mode") != "OFF":
        # Observed: e2b-dev/infra#770.
        raise compute.condition_not_met(
            "Resizing of autoscaled regional managed instance groups is not allowed. If you "
            "want to manually adjust target size remove the autoscaler or set autoscaling "
            "policy mode to OFF.")
    wanted = call.arg("size")
    if wanted is None or not wanted.isdigit():
        raise compute.required_field("size")
    new = {**res.body, "targetSize": int(wanted)}
    grow(new, size(cloud, res), int(wanted), call.now)
    op = cloud.start_operation(call, target=res.path, collection=MANAGERS, effect="put",
                               payload=new, refs=res.refs)
    return compute.RULES.render_operation(cloud, op, call.int_enums)


# --- the instance group and its instances ------------------------------------------------------


@compute.RULES.on_read(GROUPS)
def _group_read(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    manager = manager_of(cloud, res)
    body["size"] = len(members(cloud, manager)) if manager else 0
    return body


@compute.RULES.handler("compute.regionInstanceGroups.listInstances")
def list_instances(cloud: Cloud, call: Call) -> dict[str, Any]:
    group = generic.existing(cloud, call, call.path, generic.collection(call))
    manager = manager_of(cloud, group)
    wanted = (call.body or {}).get("instanceState", "ALL")
    items = [{"instance": compute.self_link(m.path), "status": m.status,
              "namedPorts": group.body.get("namedPorts", [])}
             for m in (members(cloud, manager) if manager else [])
             if wanted != "RUNNING" or m.status == "RUNNING"]
    out: dict[str, Any] = {"kind": "compute#regionInstanceGroupsListInstances",
                           "id": call.path, "selfLink": compute.self_link(call.path)}
    if items:
        out["items"] = items
    return out


@compute.RULES.handler("compute.regionInstanceGroups.setNamedPorts")
def set_named_ports(cloud: Cloud, call: Call) -> dict[str, Any]:
    """Named ports replace the group's if `fingerprint` is current (the method's request:
    "The fingerprint of the named ports information for this instance group")."""
    group = generic.existing(cloud, call, call.path, generic.collection(call))
    generic.refuse_if_busy(cloud, call, group.path)
    body = call.body or {}
    given = body.get("fingerprint")
    if given is not None and given != group.body.get("fingerprint"):
        raise compute.condition_not_met(
            "Supplied fingerprint does not match current metadata fingerprint.")
    new = {**group.body, "namedPorts": body.get("namedPorts") or [],
           "fingerprint": formats.fingerprint("compute", group.path, call.seq)}
    if not new["namedPorts"]:
        del new["namedPorts"]
    op = cloud.start_operation(call, target=group.path, collection=GROUPS, effect="put",
                               payload=new, refs=group.refs)
    return compute.RULES.render_operation(cloud, op, call.int_enums)


def member_at(cloud: Cloud, path: str) -> Member | None:
    """The group member at an instance's path, if a group keeps one there."""
    return next((m for m in all_members(cloud, path.split("/")[1]) if m.path == path), None)


def all_members(cloud: Cloud, project: str) -> list[Member]:
    return [m for manager in cloud.store.in_collection("compute", MANAGERS)
            if manager.path.split("/")[1] == project for m in members(cloud, manager)]


def _instance(cloud: Cloud, m: Member) -> dict[str, Any]:
    template = compute.stored(cloud, m.template)
    props = template.body["properties"] if template else {}
    iface = {**(props.get("networkInterfaces") or [{}])[0], "name": "nic0"}
    if m.ip:
        iface["networkIP"] = m.ip
    iface["network"] = compute.self_link(m.network)
    return {
        "kind": "compute#instance",
        "id": formats.numeric_id("compute", m.path),
        "creationTimestamp": formats.compute_time(m.since),
        "name": m.name,
        "machineType": compute.self_link(
            f"{m.path.rsplit('/instances/', 1)[0]}/machineTypes/{props.get('machineType')}"),
        "status": m.status,
        "zone": compute.self_link("/".join(m.path.split("/")[:4])),
        "networkInterfaces": [iface],
        "metadata": props.get("metadata") or {},
        "tags": props.get("tags") or {},
        "selfLink": compute.self_link(m.path),
    }


@compute.RULES.handler("compute.instances.get")
def get_instance(cloud: Cloud, call: Call) -> dict[str, Any]:
    if cloud.store.get("compute", call.path) is not None:
        return generic.get(cloud, call)
    found = member_at(cloud, call.path)
    if found is None:
        raise compute.RULES.not_found(call.path)
    return _instance(cloud, found)


@compute.RULES.handler("compute.instances.list")
def list_zone_instances(cloud: Cloud, call: Call) -> dict[str, Any]:
    zone = call.path.split("/")[3]
    stored = [compute.RULES.render(cloud, r) for r in cloud.store.children("compute", call.path)
              if r.collection == "instances" and cloud.visible(r, call.now)]
    items = stored + [_instance(cloud, m) for m in all_members(cloud, call.params["project"])
                      if m.zone == zone]
    page, token = generic.paginate(call, items)
    return compute.RULES.list_response(call, generic.collection(call), page, token)


# --- autoscalers -------------------------------------------------------------------------------


def _policy(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("autoscalingPolicy") or {}


def _minimum(body: dict[str, Any]) -> int:
    return int(_policy(body).get("minNumReplicas", 1))


def _resized_by(cloud: Cloud, call: Call, manager: Resource | None,
                scaler: dict[str, Any]) -> None:
    """An autoscaler's new minimum needs the group's new instances from now on."""
    if manager is None or manager.collection != MANAGERS:
        return
    body = dict(manager.body)
    old = size(cloud, manager)
    new = _minimum(scaler) if _policy(scaler).get("mode") != "OFF" else old
    grow(body, old, new, call.now)
    cloud.put(dataclasses.replace(manager, body=body))


@compute.RULES.on_create(AUTOSCALERS)
def _autoscaler(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    """Autoscaler.target: "URL of the managed instance group that this autoscaler will
    scale ... required when creating an autoscaler"; "For regional managed instance groups,
    use the regionAutoscalers resource" (the discovery document). That the group is in the
    autoscaler's region, and has no other autoscaler, are the emulator's words (*ours*)."""
    target = body.get("target")
    if not target:
        raise compute.required_field("target")
    manager = cloud.resolve(call, target)
    region = compute.region_of(call.path)
    if manager is None or manager.collection != MANAGERS or compute.region_of(
            manager.path) != region:
        raise compute.invalid_field("target", target, "The target must be a managed instance "
                                    f"group in region '{region}'.")
    other = autoscaler_of(cloud, manager)
    if other is not None:
        raise compute.invalid_field("target", target, "The managed instance group already has "
                                    f"an autoscaler: '{other.body.get('name')}'.")
    _check_policy(body)
    _resized_by(cloud, call, manager, body)


@compute.RULES.on_update(AUTOSCALERS)
def _autoscaler_update(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    _check_policy(body)
    _resized_by(cloud, call, compute.stored(cloud, res.body.get("target")), body)


def _check_policy(body: dict[str, Any]) -> None:
    """AutoscalingPolicy.maxNumReplicas: "required when creating or updating an autoscaler.
    The maximum number of replicas must not be lower than minimal number of replicas"; the
    minimum "cannot be less than 0"; with no signal named, "autoscale based on cpuUtilization
    to 0.6"; coolDownPeriodSec: "The default initialization period is 60 seconds" (the
    discovery document). Google's words for these refusals are not known (*ours*). Without a
    minimum the emulator takes 1 (Google: "a default value depending on maximum number of
    instances allowed")."""
    policy = body.setdefault("autoscalingPolicy", {})
    if policy.get("maxNumReplicas") is None:
        raise compute.required_field("autoscalingPolicy.maxNumReplicas")
    low, high = int(policy.setdefault("minNumReplicas", 1)), int(policy["maxNumReplicas"])
    if low < 0:
        raise compute.invalid_field("autoscalingPolicy.minNumReplicas", low,
                                    "Must be greater than or equal to 0.")
    if high < low:
        raise compute.invalid_field("autoscalingPolicy.maxNumReplicas", high,
                                    "The maximum number of replicas must not be lower than "
                                    "minimal number of replicas.")
    policy.setdefault("coolDownPeriodSec", 60)
    policy.setdefault("mode", "ON")
    if not (policy.get("loadBalancingUtilization") or policy.get("customMetricUtilizations")):
        policy.setdefault("cpuUtilization", {"utilizationTarget": 0.6,
                                             "predictiveMethod": "NONE"})


@compute.RULES.on_read(AUTOSCALERS)
def _autoscaler_read(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    body["recommendedSize"] = _minimum(body)
    body["status"] = "ACTIVE"
    return body


@compute.RULES.on_removed(AUTOSCALERS)
def _autoscaler_gone(cloud: Cloud, res: Resource) -> None:
    """The group keeps the size its autoscaler left it at."""
    manager = compute.stored(cloud, res.body.get("target"))
    if manager is not None:
        cloud.put(dataclasses.replace(manager, body={**manager.body,
                                                     "targetSize": _minimum(res.body)}))


def _by_query(call: Call) -> Call:
    """regionAutoscalers.patch and update name the autoscaler in the query (`autoscaler`),
    not the path."""
    name = call.arg("autoscaler") or (call.body or {}).get("name")
    if not name:  # observed: hashicorp/terraform#15056
        raise ApiError(400, "Required field 'autoscaler' not specified", reason="required")
    return dataclasses.replace(call, path=f"{call.path}/{name}")


@compute.RULES.handler("compute.regionAutoscalers.patch", "compute.regionAutoscalers.update")
def update_autoscaler(cloud: Cloud, call: Call) -> dict[str, Any]:
    return generic.update(cloud, _by_query(call))
