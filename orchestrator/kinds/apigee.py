"""Apigee X kinds. Google runs one long-running operation per organization at a time, so every
mutation here holds the organization's lock (`serialize`) while compute and Cloud Run work
goes on beside it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import OperationRef, invoke
from orchestrator.kinds.adapter import Target
from orchestrator.kinds.aip import AipAdapter
from orchestrator.kinds.base import MINUTE, Kind, NotReady

ORG_LOCK = "organizations/{organization}"
ALIASES = "apigee.organizations.environments.keystores.aliases"
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


@dataclass(frozen=True)
class TruststoreCertificateAdapter:
    """A certificate in a keystore, as an alias uploaded `keycertfile` with a certFile and no
    key (what makes the keystore a truststore); read back as its PEM (getCertificate), so
    that a changed certificate shows as a change."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": (f"{ALIASES}.get", f"{ALIASES}.getCertificate"),
        "create": (f"{ALIASES}.create",),
        "delete": (f"{ALIASES}.delete",),
    }

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        svc = clients.discovery("apigee")
        try:
            invoke(svc, f"{ALIASES}.get", name=target.path)
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise
        pem = invoke(svc, f"{ALIASES}.getCertificate", name=target.path)
        return {"certificate": pem.decode() if isinstance(pem, bytes) else str(pem)}

    def create(self, clients: ClientFactory, target: Target, body: dict[str, Any],
               request_id: str) -> OperationRef | None:
        boundary = f"provision-{request_id}"
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"certFile\"; "
                f"filename=\"certFile\"\r\nContent-Type: application/x-pem-file\r\n\r\n"
                f"{body['certificate']}\r\n--{boundary}--\r\n").encode()
        invoke(clients.discovery("apigee"), f"{ALIASES}.create",
               parent=target.path.rsplit("/aliases/", 1)[0], alias=target.name,
               format="keycertfile", body={
                   "contentType": f"multipart/form-data; boundary={boundary}",
                   "data": base64.b64encode(form).decode()})
        return None

    def update(self, clients: ClientFactory, target: Target, body: dict[str, Any],
               live: dict[str, Any]) -> OperationRef | None:
        raise ValueError("a truststore certificate is replaced, not updated")

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        invoke(clients.discovery("apigee"), f"{ALIASES}.delete", name=target.path)
        return None


def _endpoint_attachment_ready(live: dict[str, Any]) -> NotReady | None:
    state = live.get("connectionState", "")
    if state in ("ACCEPTED", "ACCEPTED_LIMITED_CAPACITY"):
        return None
    fix = (
        "the service attachment must accept the Apigee organization's tenant project "
        "(its apigeeProjectId): add it to consumerAcceptLists, or use ACCEPT_AUTOMATIC"
    )
    if state == "REJECTED":
        return NotReady(f"connection REJECTED by {live.get('serviceAttachment')}: {fix}", True)
    return NotReady(f"connection {state or 'not yet established'}; if it stays so, {fix}")


def _endpoint_attachment_caveat(live: dict[str, Any]) -> str | None:
    # Google's words for the state (apigee v1 discovery, EndpointAttachment.connectionState).
    if live.get("connectionState") != "ACCEPTED_LIMITED_CAPACITY":
        return None
    return (f"connection ACCEPTED_LIMITED_CAPACITY: {live.get('serviceAttachment')} accepted it, "
            "but it will only serve capacity limited traffic; the producer (the service "
            "attachment's owner) needs to take further actions to increase capacity for it")


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
        caveat=_endpoint_attachment_caveat,
    ),
    _apigee(
        "apigee.dns_zone", "DnsZone", "dnsZones", "dnsZones", name_field="",
        aip={"create_params": {"parent": "{parent}", "dnsZoneId": "{name}"}, "update_style": None},
    ),
    # Keystores, their certificates and references answer at once (no operation), and
    # Google does not lock the organization for them.
    _apigee(
        "apigee.keystore", "Keystore", "environments.keystores",
        "environments/{environment}/keystores", scope=("organization", "environment"),
        serialize=None, timeout=5 * MINUTE, aip={"update_style": None, "waits": False},
    ),
    Kind(
        name="apigee.truststore_certificate",
        api="apigee",
        schema_api="provision",
        schema="ApigeeTruststoreCertificate",
        path="organizations/{organization}/environments/{environment}/keystores/{keystore}"
             "/aliases/{name}",
        scope=("organization", "environment", "keystore"),
        adapter=TruststoreCertificateAdapter(),
        name_pattern=APIGEE_ID,
        mutable=frozenset(),
        name_field="",
        timeout=5 * MINUTE,
    ),
    _apigee(
        "apigee.reference", "Reference", "environments.references",
        "environments/{environment}/references", scope=("organization", "environment"),
        serialize=None, timeout=5 * MINUTE, mutable=frozenset({"refers"}),
        aip={"update_style": "update", "waits": False},
    ),
]
