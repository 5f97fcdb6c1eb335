"""Certificate Manager: a certificate issuance config that names a CA Service pool, and a
Google-managed certificate issued through it for the load balancer's hostnames (private PKI:
no DNS authorization), ready once ACTIVE."""

from __future__ import annotations

from typing import Any

from orchestrator.kinds.aip import AipAdapter
from orchestrator.kinds.base import MINUTE, Kind, NotReady

CONFIGS = "certificatemanager.projects.locations.certificateIssuanceConfigs"
CERTIFICATES = "certificatemanager.projects.locations.certificates"
LOCATION = "projects/{project}/locations/{region}"


def _active(live: dict[str, Any]) -> NotReady | None:
    managed = live.get("managed")
    if not managed or managed.get("state") == "ACTIVE":
        return None
    issue = (managed.get("provisioningIssue") or {}).get("details", "")
    return NotReady(f"certificate {managed.get('state', 'PROVISIONING')}"
                    + (f": {issue}" if issue else ""), final=managed.get("state") == "FAILED")


KINDS = [
    Kind(
        name="certificatemanager.certificate_issuance_config",
        api="certificatemanager",
        schema="CertificateIssuanceConfig",
        path=LOCATION + "/certificateIssuanceConfigs/{name}",
        scope=("project", "region"),
        adapter=AipAdapter(CONFIGS, create_params={
            "parent": "{parent}", "certificateIssuanceConfigId": "{name}"}),
        mutable=frozenset({"labels", "description"}),
        name_field="",
    ),
    Kind(
        name="certificatemanager.certificate",
        api="certificatemanager",
        schema="Certificate",
        path=LOCATION + "/certificates/{name}",
        scope=("project", "region"),
        adapter=AipAdapter(CERTIFICATES, create_params={
            "parent": "{parent}", "certificateId": "{name}"}),
        mutable=frozenset({"labels", "description"}),
        name_field="",
        ready=_active,
        timeout=30 * MINUTE,
        outputs=("path", "pemCertificate", "sanDnsnames"),
        secret_fields=frozenset({"selfManaged"}),
    ),
]
