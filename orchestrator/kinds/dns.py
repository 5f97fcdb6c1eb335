"""Cloud DNS kinds: managed zones through the dns v1 discovery client (google-cloud-dns's
ManagedZone has no visibility, privateVisibilityConfig or peeringConfig), record sets through
google-cloud-dns change sets, which the engine waits on until they are done.

A record step names its zone in its scope (`managed_zone: ${zone.name}`), so it is created
after the zone and destroyed before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import ApiError, from_exception
from orchestrator.gcp.operations import OperationRef, invoke
from orchestrator.kinds.adapter import Target
from orchestrator.kinds.base import Kind

# Record names are absolute (trailing dot) and lower case, as Google stores them.
DNS_NAME = r"^(\*\.)?([a-z0-9_]([-a-z0-9_]*[a-z0-9_])?\.)+$"
# What a zone holds from birth, and may still hold when deleted.
APEX_TYPES = ("SOA", "NS")
# google-cloud-dns always sends a TTL; the one gcloud uses when none is given.
DEFAULT_TTL = 300
# Changes read per page when looking for one still pending, latest first.
PAGE = 20


@dataclass(frozen=True)
class ManagedZoneAdapter:
    """A managed zone; synchronous in Google (no operation to wait on)."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": ("dns.managedZones.get",),
        "create": ("dns.managedZones.create",),
        "update": ("dns.managedZones.patch",),
        # A zone refused as not empty is listed, to say which records are left.
        "delete": ("dns.managedZones.delete", "dns.resourceRecordSets.list"),
    }

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        try:
            return _zones(clients, "get", target)
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        invoke(
            clients.discovery("dns"), "dns.managedZones.create",
            project=target.scope["project"], body=body,
        )
        return None

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        # A patch replaces the fields it sends and keeps the others.
        _zones(clients, "patch", target, body=body)
        return None

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        try:
            _zones(clients, "delete", target)
        except Exception as exc:
            api = from_exception(exc)
            if api is None or api.reason != "containerNotEmpty":
                raise
            raise _not_empty(clients, target, api) from exc
        return None


def _zones(clients: ClientFactory, verb: str, target: Target, **params: Any) -> Any:
    return invoke(
        clients.discovery("dns"), f"dns.managedZones.{verb}",
        project=target.scope["project"], managedZone=target.name, **params,
    )


def _not_empty(clients: ClientFactory, target: Target, error: ApiError) -> ApiError:
    """Google's containerNotEmpty, saying which records are left and what to do (the plan's
    own records go before their zone, so on destroy these were made some other way)."""
    svc = clients.discovery("dns")
    zone = target.name
    project = target.scope["project"]
    left: list[str] = []
    token = None
    while True:
        page = invoke(svc, "dns.resourceRecordSets.list", project=project, managedZone=zone,
                      **({"pageToken": token} if token else {}))
        left += [
            f"{r['name']} {r['type']}"
            for r in page.get("rrsets", [])
            if r["type"] not in APEX_TYPES
        ]
        token = page.get("nextPageToken")
        if not token:
            break
    return ApiError(
        error.code,
        f"{error.message}: it still holds record sets besides its SOA and NS: "
        f"{', '.join(left) or '(none listed)'}. Delete them first (gcloud dns record-sets "
        f"delete NAME --type=TYPE --zone={zone} --project={project}), or declare them as "
        "dns.record_set steps so that provision deletes them before the zone; then run the "
        "command again.",
        status=error.status, reason=error.reason, method=error.method,
    )


@dataclass(frozen=True)
class RecordSetAdapter:
    """A record set, changed through a change set (an update is one change deleting the old
    record set and adding the new), whose completion the engine awaits as a "dns" operation."""

    # (dns.changes.list, to wait out a pending change, is read where allowed: see _settled.)
    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": ("dns.resourceRecordSets.list",),
        **{verb: ("dns.resourceRecordSets.list", "dns.changes.create", "dns.changes.get")
           for verb in ("create", "update", "delete")},
    }

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        record = self._find(clients, target)
        return None if record is None else _json(record)

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        self._settled(clients, target)
        return self._change(clients, target, add=body)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        self._settled(clients, target)
        # Read again once settled: Google deletes a record set only when given exactly as it is.
        return self._change(clients, target, add=body, remove=self.read(clients, target))

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        self._settled(clients, target)
        live = self.read(clients, target)
        return None if live is None else self._change(clients, target, remove=live)

    def _settled(self, clients: ClientFactory, target: Target) -> None:
        """Refuse, as retryable, to change a record set that a pending change still changes
        (one sent by a run that was killed before it recorded it): a change is checked against
        the zone as its pending changes leave it, while the record sets read as they are, so a
        change made from what is read would be refused (412) or find nothing to delete."""
        key = (target.name, target.spec["type"])
        token = None
        while True:
            try:
                page = invoke(
                    clients.discovery("dns"), "dns.changes.list",
                    project=target.scope["project"], managedZone=target.scope["managed_zone"],
                    sortBy="changeSequence", sortOrder="descending", maxResults=PAGE,
                    **({"pageToken": token} if token else {}),
                )
            except Exception as exc:
                api = from_exception(exc)
                # No zone: the change itself says what is wrong. No permission to list
                # changes (a role with record sets and changes.create only): not checked.
                if api is not None and (api.not_found or api.code == 403):
                    return
                raise
            for change in page.get("changes", []):
                if change.get("status") != "pending":
                    return  # done in sequence: what came before is done too
                touched = change.get("additions", []) + change.get("deletions", [])
                if any((r.get("name"), r.get("type")) == key for r in touched):
                    raise ApiError(
                        400, f"{target.name} {key[1]}: change {change.get('id')} to it is "
                        "still pending; waiting for it to be done", reason="resourceNotReady",
                    )
            token = page.get("nextPageToken")
            if not token:
                return

    def _zone(self, clients: ClientFactory, target: Target) -> Any:
        return clients.dns(target.scope["project"]).zone(target.scope["managed_zone"])

    def _find(self, clients: ClientFactory, target: Target) -> Any:
        # google-cloud-dns lists a zone's record sets but cannot filter them by name.
        try:
            for record in self._zone(clients, target).list_resource_record_sets():
                if record.name == target.name and record.record_type == target.spec["type"]:
                    return record
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:  # the zone is gone, and its records with it
                return None
            raise
        return None

    def _change(
        self,
        clients: ClientFactory,
        target: Target,
        *,
        add: dict[str, Any] | None = None,
        remove: dict[str, Any] | None = None,
    ) -> OperationRef | None:
        zone = self._zone(clients, target)
        change = zone.changes()
        if remove is not None:
            change.delete_record_set(_record(zone, remove))
        if add is not None:
            change.add_record_set(_record(zone, add))
        change.create()
        if change.status == "done":
            return None
        return OperationRef(
            type="dns", api="dns", name=change.name,
            project=target.scope["project"], zone=target.scope["managed_zone"],
        )


def _record(zone: Any, data: dict[str, Any]) -> Any:
    unsupported = set(data) - {"name", "type", "ttl", "rrdatas"}
    if unsupported:
        raise ValueError(
            f"a record set here takes name, type, ttl and rrdatas, not {', '.join(unsupported)}"
        )
    ttl = data.get("ttl")
    return zone.resource_record_set(
        data["name"], data["type"], DEFAULT_TTL if ttl is None else int(ttl), list(data["rrdatas"])
    )


def _json(record: Any) -> dict[str, Any]:
    return {
        "name": record.name,
        "type": record.record_type,
        "ttl": record.ttl,
        "rrdatas": list(record.rrdatas),
    }


KINDS = [
    Kind(
        name="dns.managed_zone",
        api="dns",
        schema="ManagedZone",
        path="projects/{project}/managedZones/{name}",
        adapter=ManagedZoneAdapter(),
        # dnsName, visibility and the reverse-lookup and Service Directory settings are fixed
        # (as in the Terraform provider's google_dns_managed_zone).
        mutable=frozenset(
            {
                "description", "labels", "privateVisibilityConfig", "peeringConfig",
                "forwardingConfig", "dnssecConfig", "cloudLoggingConfig",
            }
        ),
        outputs=("path", "name", "dnsName", "nameServers"),
        # Cloud DNS access control: a private zone binds networks, a peering zone targets one.
        also=tuple((verb, permission, prop) for verb in ("create", "update") for permission, prop
                   in (("dns.networks.bindPrivateDNSZone", "privateVisibilityConfig"),
                       ("dns.networks.targetWithPeeringZone", "peeringConfig"))),
    ),
    Kind(
        name="dns.record_set",
        api="dns",
        schema="ResourceRecordSet",
        # Google's own record-set path: a record set is named by its name and type.
        path="projects/{project}/managedZones/{managed_zone}/rrsets/{name}/{type}",
        scope=("project", "managed_zone"),
        adapter=RecordSetAdapter(),
        name_pattern=DNS_NAME,
        mutable=frozenset({"ttl", "rrdatas"}),
        # changes.create's reference: the record sets it adds, changes or deletes.
        also=tuple((verb, f"dns.resourceRecordSets.{verb}", "")
                   for verb in ("create", "update", "delete")),
    ),
]
