"""Cloud DNS v1: managed zones (synchronous, born with their SOA and NS record sets; private and
peering zones whose networks must resolve), record sets changed through `Change`s that stay
`pending` for a while, and the direct record-set methods.

DNS's discovery paths carry their own `dns/v1/` prefix, so stored paths do too.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from google_facts import discovery
from provision_emulator import errors, formats, generic, refs, schemas
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.errors import ApiError
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud
    from provision_emulator.refs import Ref

ZONES = "managedZones"
CHANGES = "changes"
RRSETS = "resourceRecordSets"
APEX_TYPES = ("SOA", "NS")  # what a zone holds from birth, and may still hold when deleted
APEX_TTL = 21600
PRIVATE_NAME_SERVER = "ns-gcp-private.googledomains.com."
HOSTMASTER = "cloud-dns-hostmaster.google.com."
USER = "emulator@provision.local"


class DnsRules(ApiRules):
    numeric_enums = False
    polled_collections = frozenset({"changes"})

    def resource_id(self, call: Call, coll: Collection, body: dict[str, Any]) -> str:
        name = str(body.get("name") or "")
        if not name:
            raise errors.invalid(f"Required field 'entity.{_entity(call)}.name' not specified")
        return name

    def new_resource(
        self, cloud: Cloud, call: Call, coll: Collection, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        props = schemas.properties("dns", coll.schema) if coll.schema else frozenset()
        fills = {
            "kind": _kind(coll.schema),
            "id": formats.numeric_id("dns", path, call.seq, call.now),
            "creationTime": _stamp(call.now),
        }
        return {**body, **{k: v for k, v in fills.items() if k in props and v is not None}}

    def apply_update(
        self, call: Call, coll: Collection, old: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        if call.method.name == "patch":  # the fields sent replace theirs; the rest stay
            return {**old, **body}
        return {**schemas.server_fields("dns", coll.schema, old), **body}

    def not_found(self, path: str, coll: Collection | None = None) -> ApiError:
        if coll is None:
            return super().not_found(path, coll)
        return _missing(_get_parameter(coll), path.rsplit("/", 1)[-1])

    def already_exists(self, path: str, coll: Collection) -> ApiError:
        entity = schemas.camel(schemas.snake(coll.schema or coll.name))
        return errors.already_exists(
            f"The resource 'entity.{entity}' named '{path.rsplit('/', 1)[-1]}' already exists"
        )

    def missing_reference(self, call: Call, ref: Ref) -> ApiError:
        for where, value in refs.strings(call.body or {}):
            if value.endswith(ref.path):
                field = f"entity.{_entity(call)}" + "".join(
                    f"[{p}]" if isinstance(p, int) else f".{p}" for p in where
                )
                return errors.invalid(f"Invalid value for '{field}': '{value}'")
        return super().missing_reference(call, ref)

    def operation_path(self, cloud: Cloud, call: Call, target: str) -> str:
        # A change's progress is the change itself: its operation is not served anywhere.
        return f"{target}/progress"


RULES = DnsRules("dns")


# --- Google's forms -------------------------------------------------------------------------


ZONE_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")


def _stamp(t: float) -> str:
    return formats.compute_time(t).replace("+00:00", "Z")


def _kind(schema: str | None) -> str | None:
    if schema is None:
        return None
    return discovery.schema("dns", schema).get("properties", {}).get("kind", {}).get("default")


def _entity(call: Call) -> str:
    return schemas.camel(schemas.snake(call.method.request or "resource"))


def _get_parameter(coll: Collection) -> str:
    """The get method's last path parameter ("managedZone", "changeId"), as Google names a
    missing resource by it."""
    get = discovery.method("dns", f"dns.{coll.name}.get")
    return get.flat_path.rsplit("{", 1)[-1].rstrip("}")


def _missing(parameter: str, name: str) -> ApiError:
    return errors.not_found(f"The 'parameters.{parameter}' resource named '{name}' does not exist.")


def _record_label(record: dict[str, Any]) -> str:
    return f"{record.get('name')} ({record.get('type')})"


# --- zones ----------------------------------------------------------------------------------


def _zone(cloud: Cloud, call: Call) -> Resource:
    path = "/".join(call.path.split("/")[:6])  # dns/v1/projects/P/managedZones/Z
    res = cloud.store.get("dns", path)
    if res is None:
        raise _missing("managedZone", call.params["managedZone"])
    return res


def _name_servers(zone: dict[str, Any]) -> list[str]:
    if zone.get("visibility") == "private":
        return [PRIVATE_NAME_SERVER]
    shard = "abcde"[formats.digest("dns", zone["name"])[0] % 5]
    return [f"ns-cloud-{shard}{i}.googledomains.com." for i in range(1, 5)]


@RULES.on_create(ZONES)
def _check_zone(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    name = str(body.get("name") or "")
    if not ZONE_NAME.match(name):
        # C62: "must start with a letter, end with a letter or digit, and only contain lowercase
        # letters, digits or dashes", up to 63 (ManagedZone.name).
        raise errors.invalid(f"Invalid value for 'entity.managedZone.name': '{name}'")
    dns_name = str(body.get("dnsName") or "")
    if not dns_name.endswith("."):
        raise errors.invalid(f"Invalid value for 'entity.managedZone.dnsName': '{dns_name}'")
    body["dnsName"] = dns_name.lower()
    body.setdefault("description", "")
    visibility = body.setdefault("visibility", "public")
    private_only = ("privateVisibilityConfig", "peeringConfig", "forwardingConfig")
    for field in private_only:
        if body.get(field) is not None and visibility != "private":
            raise errors.invalid(
                f"Invalid value for 'entity.managedZone.{field}': only private zones may set it"
            )
    body["nameServers"] = _name_servers(body)


@RULES.handler("dns.managedZones.create")
def create_zone(cloud: Cloud, call: Call) -> dict[str, Any]:
    zone = generic.create(cloud, call)
    path = f"{call.path}/{zone['name']}"
    apex = zone["dnsName"]
    servers = zone["nameServers"]
    born = [
        _record(apex, "SOA", APEX_TTL, [f"{servers[0]} {HOSTMASTER} 1 21600 3600 259200 300"]),
        _record(apex, "NS", APEX_TTL, servers),
    ]
    for record in born:
        _put_record(cloud, path, record, call.now)
    change = {"kind": "dns#change", "id": "0", "startTime": zone["creationTime"]}
    change |= {"status": "done", "additions": born}
    cloud.put(Resource("dns", f"{path}/changes/0", CHANGES, change, call.now))
    return zone


@RULES.handler("dns.managedZones.list")
def list_zones(cloud: Cloud, call: Call) -> dict[str, Any]:
    listed = generic.list_resources(cloud, call)
    wanted = (call.arg("dnsName") or "").lower()
    if wanted:
        listed["managedZones"] = [
            z for z in listed.get("managedZones", []) if z["dnsName"] == wanted
        ]
    return {"kind": "dns#managedZonesListResponse", **listed}


@RULES.handler("dns.managedZones.patch", "dns.managedZones.update")
def update_zone(cloud: Cloud, call: Call) -> dict[str, Any]:
    """Zone updates answer a `dns#operation` holding the zone before and after."""
    old = _zone(cloud, call).body
    new = generic.update(cloud, call)
    return {
        "kind": "dns#operation",
        "id": str(call.seq),
        "startTime": _stamp(call.now),
        "status": "done",
        "type": "UPDATE",
        "user": USER,
        "zoneContext": {"oldValue": old, "newValue": new},
    }


@RULES.on_update(ZONES)
def _keep_zone_identity(cloud: Cloud, call: Call, res: Resource, body: dict[str, Any]) -> None:
    for field in ("dnsName", "visibility"):
        if body.get(field, res.body.get(field)) != res.body.get(field):
            raise errors.invalid(
                f"Invalid value for 'entity.managedZone.{field}': '{body.get(field)}'"
            )
    body["nameServers"] = res.body["nameServers"]


@RULES.handler("dns.managedZones.delete")
def delete_zone(cloud: Cloud, call: Call) -> dict[str, Any]:
    zone = _zone(cloud, call)
    records = _records(cloud, zone.path)
    apex = zone.body["dnsName"]
    if any(not (r["name"] == apex and r["type"] in APEX_TYPES) for r in records.values()):
        raise ApiError(
            400,
            f"The resource named '{zone.body['name']}' cannot be deleted because it is not empty",
            reason="containerNotEmpty",
        )
    answer = generic.delete(cloud, call)
    for child in [r for r in cloud.store if r.api == "dns" and r.path.startswith(zone.path + "/")]:
        cloud.remove("dns", child.path)
    return answer


# --- record sets ----------------------------------------------------------------------------


def _record(name: str, kind: str, ttl: int | None, rrdatas: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "dns#resourceRecordSet", "name": name, "type": kind}
    if ttl is not None:
        out["ttl"] = ttl
    out["rrdatas"] = list(rrdatas)
    return out


def _record_path(zone_path: str, name: str, kind: str) -> str:
    return f"{zone_path}/rrsets/{name}/{kind}"


def _put_record(cloud: Cloud, zone_path: str, record: dict[str, Any], now: float) -> None:
    path = _record_path(zone_path, record["name"], record["type"])
    cloud.put(Resource("dns", path, RRSETS, record, now))


def _records(cloud: Cloud, zone_path: str) -> dict[tuple[str, str], dict[str, Any]]:
    prefix = f"{zone_path}/rrsets/"
    return {
        (r.body["name"], r.body["type"]): r.body
        for r in cloud.store.in_collection("dns", RRSETS)
        if r.path.startswith(prefix)
    }


def _normalized(given: dict[str, Any], zone: dict[str, Any], field: str) -> dict[str, Any]:
    """A record set as stored: lower-case name inside the zone, integer TTL, valid addresses."""
    name = str(given.get("name") or "").lower()
    kind = str(given.get("type") or "").upper()
    apex = zone["dnsName"]
    if not name.endswith(".") or not (name == apex or name.endswith("." + apex)):
        raise errors.invalid(f"Invalid value for '{field}.name': '{given.get('name')}'")
    if not kind:
        raise errors.invalid(f"Required field '{field}.type' not specified")
    rrdatas = [str(r) for r in given.get("rrdatas") or []]
    if not rrdatas and not given.get("routingPolicy"):
        raise errors.invalid(f"Required field '{field}.rrdata' not specified")
    family = {"A": ipaddress.IPv4Address, "AAAA": ipaddress.IPv6Address}.get(kind)
    for i, data in enumerate(rrdatas):
        try:
            if family is not None:
                family(data)
        except ValueError as exc:
            raise errors.invalid(f"Invalid value for '{field}.rrdata[{i}]': '{data}'") from exc
    if kind in ("CNAME", "SOA") and len(rrdatas) > 1:
        # C66, https://cloud.google.com/dns/docs/error-messages
        raise ApiError(400, f"The resource record set {field} is only permitted to have one "
                       f"record because it is of type {kind}.", reason="invalidRecordCount")
    if kind == "CNAME" and name == apex:
        # C67: the apex holds the zone's SOA and NS, which a CNAME may not stand beside.
        raise ApiError(400, f"The resource record set {field} is invalid because a CNAME "
                       "resource record set is not permitted at the zone apex.",
                       reason="recordTypeDisallowedAtZoneApex")
    ttl = given.get("ttl")
    record = _record(name, kind, int(ttl) if ttl is not None else None, rrdatas)
    for extra in ("routingPolicy", "signatureRrdatas"):
        if given.get(extra):
            record[extra] = given[extra]
    return record


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("ttl") == b.get("ttl") and sorted(a["rrdatas"]) == sorted(b["rrdatas"])


def _apply(
    records: dict[tuple[str, str], dict[str, Any]],
    additions: list[dict[str, Any]],
    deletions: list[dict[str, Any]],
) -> None:
    """Check a change against `records` (Google's errors name the offending entry) and apply
    it to them: deletions first, each matching its record set exactly."""
    for i, gone in enumerate(deletions):
        key = (gone["name"], gone["type"])
        have = records.get(key)
        if have is None:
            raise errors.not_found(
                f"The 'entity.change.deletions[{i}]' resource named '{_record_label(gone)}' "
                "does not exist."
            )
        if not _same(have, gone):
            raise ApiError(
                412,
                f"Precondition not met for 'entity.change.deletions[{i}]'",
                reason="conditionNotMet",
                status="FAILED_PRECONDITION",
            )
        del records[key]
    for i, new in enumerate(additions):
        key = (new["name"], new["type"])
        if key in records:
            raise errors.already_exists(
                f"The 'entity.change.additions[{i}]' resource named '{_record_label(new)}' "
                "already exists"
            )
        others = {kind for name, kind in records if name == new["name"]}
        if (new["type"] == "CNAME" and others) or "CNAME" in others:
            # C65, https://cloud.google.com/dns/docs/error-messages
            raise ApiError(
                400, f"The resource record set 'entity.change.additions[{i}]' is invalid because "
                "the DNS name may have either one CNAME resource record set or resource record "
                "sets of other types, but not both.", reason="cnameResourceRecordSetConflict")
        records[key] = new


def _projected(cloud: Cloud, zone_path: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The zone's record sets once its pending changes are done: what a new change meets."""
    records = _records(cloud, zone_path)
    for res in cloud.store.children("dns", f"{zone_path}/changes"):
        if res.body.get("status") == "pending":
            _apply(records, res.body.get("additions", []), res.body.get("deletions", []))
    return records


@RULES.handler("dns.changes.create")
def create_change(cloud: Cloud, call: Call) -> dict[str, Any]:
    zone = _zone(cloud, call)
    given = call.body or {}
    additions = [
        _normalized(r, zone.body, f"entity.change.additions[{i}]")
        for i, r in enumerate(given.get("additions") or [])
    ]
    deletions = [
        _normalized(r, zone.body, f"entity.change.deletions[{i}]")
        for i, r in enumerate(given.get("deletions") or [])
    ]
    if not additions and not deletions:
        raise errors.invalid("The 'entity.change' parameter is required but was missing.")
    _apply(_projected(cloud, zone.path), additions, deletions)
    change_id = str(len(cloud.store.children("dns", f"{zone.path}/changes")))
    path = f"{zone.path}/changes/{change_id}"
    change = {"kind": "dns#change", "id": change_id, "startTime": _stamp(call.now)}
    change |= {"status": "pending", "additions": additions, "deletions": deletions}
    change = {k: v for k, v in change.items() if v != []}
    cloud.put(Resource("dns", path, CHANGES, change, call.now))
    op = cloud.start_operation(call, target=path, collection=CHANGES, effect="change")
    op.error = None  # an accepted change always completes: it was checked above
    return change


@RULES.handler("dns.changes.list")
def list_changes(cloud: Cloud, call: Call) -> dict[str, Any]:
    """A zone's changes by change sequence (the only `sortBy`), ascending unless `sortOrder` is
    descending (Cloud DNS v1 discovery document, changes.list)."""
    zone = _zone(cloud, call)
    changes = sorted(
        (r.body for r in cloud.store.children("dns", f"{zone.path}/changes")),
        key=lambda change: int(change["id"]),
        reverse=(call.arg("sortOrder") or "").lower() == "descending",
    )
    page, token = generic.paginate(call, changes)
    out: dict[str, Any] = {"kind": "dns#changesListResponse", "changes": page}
    return out | ({"nextPageToken": token} if token else {})


@RULES.effect("change")
def _change_done(cloud: Cloud, op: Operation) -> dict[str, Any] | None:
    res = cloud.store.get("dns", op.target)
    if res is None:  # its zone went first
        return None
    zone_path = op.target.rsplit("/changes/", 1)[0]
    for gone in res.body.get("deletions", []):
        cloud.remove("dns", _record_path(zone_path, gone["name"], gone["type"]))
    for new in res.body.get("additions", []):
        _put_record(cloud, zone_path, new, op.end)
    cloud.put(Resource("dns", op.target, CHANGES, {**res.body, "status": "done"}, res.created))
    return None


def _record_of(cloud: Cloud, call: Call) -> tuple[Resource, dict[str, Any]]:
    zone = _zone(cloud, call)
    key = (call.params["name"].lower(), call.params["type"].upper())
    found = _records(cloud, zone.path).get(key)
    if found is None:
        raise errors.not_found(
            f"The 'entity.resourceRecordSet' resource named '{key[0]} ({key[1]})' does not exist."
        )
    return zone, found


@RULES.handler("dns.resourceRecordSets.list")
def list_records(cloud: Cloud, call: Call) -> dict[str, Any]:
    zone = _zone(cloud, call)
    name, kind = call.arg("name"), call.arg("type")
    if kind and not name:
        raise errors.invalid("Invalid value for 'parameters.type': a type needs a name")
    records = sorted(_records(cloud, zone.path).values(), key=lambda r: (r["name"], r["type"]))
    if name:
        records = [r for r in records if r["name"] == name.lower()]
    if kind:
        records = [r for r in records if r["type"] == kind.upper()]
    page, token = generic.paginate(call, records)
    out: dict[str, Any] = {"kind": "dns#resourceRecordSetsListResponse", "rrsets": page}
    return out | ({"nextPageToken": token} if token else {})


@RULES.handler("dns.resourceRecordSets.get")
def get_record(cloud: Cloud, call: Call) -> dict[str, Any]:
    return _record_of(cloud, call)[1]


@RULES.handler("dns.resourceRecordSets.create")
def create_record(cloud: Cloud, call: Call) -> dict[str, Any]:
    zone = _zone(cloud, call)
    record = _normalized(call.body or {}, zone.body, "entity.resourceRecordSet")
    if (record["name"], record["type"]) in _projected(cloud, zone.path):
        raise errors.already_exists(
            f"The resource 'entity.resourceRecordSet' named '{_record_label(record)}' "
            "already exists"
        )
    _put_record(cloud, zone.path, record, call.now)
    return record


@RULES.handler("dns.resourceRecordSets.patch")
def patch_record(cloud: Cloud, call: Call) -> dict[str, Any]:
    zone, current = _record_of(cloud, call)
    given = {**current, **(call.body or {}), "name": current["name"], "type": current["type"]}
    record = _normalized(given, zone.body, "entity.resourceRecordSet")
    _put_record(cloud, zone.path, record, call.now)
    return record


@RULES.handler("dns.resourceRecordSets.delete")
def delete_record(cloud: Cloud, call: Call) -> dict[str, Any]:
    zone, current = _record_of(cloud, call)
    if current["name"] == zone.body["dnsName"] and current["type"] in APEX_TYPES:
        raise errors.invalid(
            f"The resource 'entity.resourceRecordSet' named '{_record_label(current)}' is the "
            f"zone's own {current['type']} record set and cannot be deleted"
        )
    cloud.remove("dns", _record_path(zone.path, current["name"], current["type"]))
    return {}
