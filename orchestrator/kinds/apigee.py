"""Apigee X kinds. Google runs one long-running operation per organization at a time, so every
mutation here holds the organization's lock (`serialize`) while compute and Cloud Run work
goes on beside it."""

from __future__ import annotations

from typing import Any

from orchestrator.kinds.aip import AipAdapter
from orchestrator.kinds.base import MINUTE, Kind, NotReady

ORG_LOCK = "organizations/{organization}"
APIGEE_ID = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"


def _apigee(name: str, schema: str, collection: str, path: str, **options: Any) -> Kind:
    options.setdefault("scope", ("organization",))
    options.setdefault("serialize", ORG_LOCK)
    options.setdefault("timeout", 30 * MINUTE)
    options.setdefault("name_pattern", APIGEE_ID)
    adapter = options.pop("adapter", None) or AipAdapter(
        f"apigee.organizations.{collection}", **options.pop("aip", {})
    )
    return Kind(
        name=name,
        api="apigee",
        schema=f"GoogleCloudApigeeV1{schema}",
        path=f"organizations/{{organization}}/{path}/{{name}}",
        adapter=adapter,
        outputs=("path", "name"),
        **options,
    )


def _endpoint_attachment_ready(live: dict[str, Any]) -> NotReady | None:
    state = live.get("connectionState", "")
    if state == "ACCEPTED":
        return None
    fix = (
        "the service attachment must accept the Apigee organization's tenant project "
        "(its apigeeProjectId): add it to consumerAcceptLists, or use ACCEPT_AUTOMATIC"
    )
    if state == "REJECTED":
        return NotReady(f"connection REJECTED by {live.get('serviceAttachment')}: {fix}", True)
    return NotReady(f"connection {state or 'not yet established'}; if it stays so, {fix}")


KINDS = [
    Kind(
        name="apigee.organization",
        api="apigee",
        schema="GoogleCloudApigeeV1Organization",
        # The organization takes its project's id as its name.
        path="organizations/{name}",
        scope=(),
        name_pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
        name_field="",
        adapter=AipAdapter(
            "apigee.organizations",
            create_params={"parent": "projects/{name}"},
            update_style="update",
            delete_params={"retention": "MINIMUM"},
        ),
        mutable=frozenset({"displayName", "description", "properties"}),
        serialize="organizations/{name}",
        timeout=45 * MINUTE,
        outputs=("path", "name", "apigeeProjectId"),
    ),
    _apigee(
        "apigee.instance", "Instance", "instances", "instances",
        mutable=frozenset({"consumerAcceptList"}), timeout=60 * MINUTE,
    ),
    _apigee("apigee.environment", "Environment", "environments", "environments",
            aip={"update_style": None}),
    _apigee("apigee.envgroup", "EnvironmentGroup", "envgroups", "envgroups",
            mutable=frozenset({"hostnames"})),
    _apigee(
        "apigee.envgroup_attachment", "EnvironmentGroupAttachment", "envgroups.attachments",
        "envgroups/{envgroup}/attachments", scope=("organization", "envgroup"),
        name_field="", aip={"match": "environment", "update_style": None},
    ),
    _apigee(
        "apigee.instance_attachment", "InstanceAttachment", "instances.attachments",
        "instances/{instance}/attachments", scope=("organization", "instance"),
        name_field="", aip={"match": "environment", "update_style": None},
    ),
    _apigee(
        "apigee.endpoint_attachment", "EndpointAttachment", "endpointAttachments",
        "endpointAttachments", name_field="",
        aip={"create_params": {"parent": "{parent}", "endpointAttachmentId": "{name}"},
             "update_style": None},
        ready=_endpoint_attachment_ready,
    ),
    _apigee(
        "apigee.dns_zone", "DnsZone", "dnsZones", "dnsZones", name_field="",
        aip={"create_params": {"parent": "{parent}", "dnsZoneId": "{name}"}, "update_style": None},
    ),
]
