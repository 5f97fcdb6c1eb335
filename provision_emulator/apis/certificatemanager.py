"""Certificate Manager (v1): certificate issuance configs that name a CA Service pool, and
certificates: Google-managed ones issued by that pool (private PKI), or self-managed ones.

Google's behaviour, as documented (https://cloud.google.com/certificate-manager/docs):
- an issuance config's `certificateAuthorityConfig.certificateAuthorityServiceConfig.caPool`
  must exist; a managed certificate with an `issuanceConfig` is issued by that pool's CA for its
  `domains` (no DNS authorization: a private CA needs none) and is ACTIVE once issued, its
  chain in `pemCertificate` and its names in `sanDnsnames`;
- a managed certificate without an issuance config is publicly signed once its domains are
  authorized (DNS authorizations): the emulator keeps it PROVISIONING, as it cannot authorize;
- a self-managed certificate's key is never answered;
- a certificate a load balancer uses is not deleted (`usedBy`).
The refusals' words are the emulator's own.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from provision_emulator import errors, formats
from provision_emulator.apis import privateca
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.cloud import Cloud
from provision_emulator.store import Resource

RULES = ApiRules("certificatemanager")
CONFIGS = "projects.locations.certificateIssuanceConfigs"
CERTIFICATES = "projects.locations.certificates"
DEFAULT_LIFETIME = 30 * 86400


def _pool(config: dict[str, Any]) -> str:
    return str(((config.get("certificateAuthorityConfig") or {})
                .get("certificateAuthorityServiceConfig") or {}).get("caPool") or "")


@RULES.on_create(CONFIGS)
def _issuance_config(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    pool = _pool(body)
    if not pool:
        raise errors.invalid("certificate_authority_config.certificate_authority_service_config"
                             ".ca_pool must be set.")
    if cloud.store.get("privateca", pool.removeprefix("//privateca.googleapis.com/")) is None:
        raise errors.invalid(f"CA pool {pool} not found.")


@RULES.on_create(CERTIFICATES)
def _certificate(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    managed = body.get("managed")
    if managed and body.get("selfManaged"):
        raise errors.invalid("A certificate is managed or self-managed, not both.")
    if body.get("selfManaged"):
        pem = str(body["selfManaged"].get("pemCertificate") or "")
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            raise errors.invalid("self_managed.pem_certificate could not be parsed.") from exc
        body.update(pemCertificate=pem, sanDnsnames=_names(cert),
                    expireTime=formats.rfc3339(cert.not_valid_after_utc.timestamp()))
        return
    if not managed or not managed.get("domains"):
        raise errors.invalid("A managed certificate needs managed.domains.")
    domains = list(managed["domains"])
    config_name = str(managed.get("issuanceConfig") or "")
    if not config_name:
        body["managed"] = {**managed, "state": "PROVISIONING"}
        return
    config = cloud.store.get("certificatemanager", config_name)
    if config is None:
        raise errors.invalid(f"Certificate issuance config {config_name} not found.")
    algorithm = config.body.get("keyAlgorithm", "RSA_2048")
    key = (ec.generate_private_key(ec.SECP256R1()) if algorithm == "ECDSA_P256"
           else rsa.generate_private_key(public_exponent=65537, key_size=2048))
    lifetime = formats.seconds(config.body.get("lifetime"), DEFAULT_LIFETIME)
    pool = _pool(config.body).removeprefix("//privateca.googleapis.com/")
    pem, chain, _ = privateca.issue(
        cloud, pool, key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]), domains, lifetime,
        call.now, seed=(call.path, call.seq))
    cert = x509.load_pem_x509_certificate(pem.encode())
    body.update(
        pemCertificate=pem + "".join(chain), sanDnsnames=domains,
        expireTime=formats.rfc3339(cert.not_valid_after_utc.timestamp()),
        managed={**managed, "state": "ACTIVE"},
    )


def _names(cert: x509.Certificate) -> list[str]:
    try:
        return list(cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return []


@RULES.on_read(CERTIFICATES)
def _certificate_as_read(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    if "selfManaged" in body:
        body["selfManaged"] = {k: v for k, v in body["selfManaged"].items()
                               if k != "pemPrivateKey"}
    users = [f"//compute.googleapis.com/{r.path}"
             for r in cloud.store.referrers("certificatemanager", res.path)]
    if users:
        body["usedBy"] = [{"name": u} for u in users]
    return body
