"""SSL certificates, registered on compute's rules.

A Google-managed certificate is PROVISIONING until a load balancer serves it (a target HTTPS
proxy that names it, behind a global forwarding rule), and for a while after that
(`compute.sslCertificates.managed` in the durations): then ACTIVE, each domain ACTIVE, the
domains its subject alternative names. A self-managed certificate's private key is taken and
never answered.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from provision_emulator import formats, operations
from provision_emulator.apis import compute
from provision_emulator.call import Call
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

GLOBAL, REGIONAL = "sslCertificates", "regionSslCertificates"
PROXIES = frozenset({"targetHttpsProxies", "targetSslProxies"})
FORWARDING_RULES = "globalForwardingRules"
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z][-a-z0-9]*$")
VALIDITY = 90 * 86400  # a managed certificate's lifetime, renewed before it ends


@compute.RULES.on_create(GLOBAL, REGIONAL)
def _certificate(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    kind = body.setdefault("type", "MANAGED" if body.get("managed") else "SELF_MANAGED")
    if kind == "MANAGED":
        _managed(call, body)
        return
    self_managed = body.get("selfManaged") or {}
    for field in ("certificate", "privateKey"):
        if not (body.get(field) or self_managed.get(field)):
            raise compute.required_field(field)
    certificate = body.get("certificate") or self_managed["certificate"]
    key = body.get("privateKey") or self_managed["privateKey"]
    body.update(_parsed(certificate, key))


def _parsed(certificate: str, key: str) -> dict[str, Any]:
    """A self-managed certificate checked as Google checks it (C16-C18 of
    docs/emulator-fidelity.md: PEM, with a CN or SAN, its key PEM without a passphrase and
    matching it), and what Google reports of it: its names and when it expires."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except ValueError:
        raise compute.invalid_field("certificate", "", "The SSL certificate could not be "
                                    "parsed.") from None
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        raise compute.invalid_field("privateKey", "", "The private key could not be parsed "
                                    "(PEM, without a passphrase).") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if private.public_key().public_bytes(encoding, public) != (
            cert.public_key().public_bytes(encoding, public)):
        raise compute.invalid_field("privateKey", "", "The private key does not match the "
                                    "SSL certificate.")
    try:
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    common = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not names and not common:
        raise compute.invalid_field("certificate", "", "The SSL certificate is missing a Common "
                                    "Name(CN) or Subject Alternative Name(SAN).")
    return {
        "subjectAlternativeNames": names or common,
        "expireTime": formats.compute_time(cert.not_valid_after_utc.timestamp()),
    }


def _managed(call: Call, body: dict[str, Any]) -> None:
    if compute.region_of(call.path):
        raise compute.invalid_field(
            "type", "MANAGED", "Regional SSL certificates cannot be Google-managed."
        )
    domains = (body.get("managed") or {}).get("domains") or []
    if not domains:
        raise compute.required_field("managed.domains")
    for domain in domains:
        if not DOMAIN.match(domain):
            raise compute.invalid_field(
                "managed.domains", domain, "Managed certificates need fully qualified domains."
            )
    body["managed"] = {
        "domains": domains,
        "status": "PROVISIONING",
        "domainStatus": dict.fromkeys(domains, "PROVISIONING"),
    }


def served_since(cloud: Cloud, certificate: Resource) -> float | None:
    """When a load balancer first served the certificate (its proxy behind a forwarding rule),
    or None while none does."""
    times = [
        max(certificate.created, proxy.created, rule.created)
        for proxy in cloud.store.referrers("compute", certificate.path)
        if proxy.collection in PROXIES
        for rule in cloud.store.referrers("compute", proxy.path)
        if rule.collection == FORWARDING_RULES
    ]
    return min(times) if times else None


@compute.RULES.on_read(GLOBAL, REGIONAL)
def _certificate_as_read(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    body.pop("privateKey", None)
    if "selfManaged" in body:
        body["selfManaged"] = {k: v for k, v in body["selfManaged"].items() if k != "privateKey"}
    if body.get("type") != "MANAGED":
        return body
    since = served_since(cloud, res)
    lag = operations.duration("compute", f"{GLOBAL}.managed", cloud.config.durations)
    if since is None or cloud.now() < since + cloud.scaled(lag):
        return body
    active = since + cloud.scaled(lag)
    domains = body["managed"]["domains"]
    body["managed"] = {
        **body["managed"],
        "status": "ACTIVE",
        "domainStatus": dict.fromkeys(domains, "ACTIVE"),
    }
    body["subjectAlternativeNames"] = domains
    body["expireTime"] = formats.compute_time(active + VALIDITY)
    return body
