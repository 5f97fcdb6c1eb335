"""Certificate Authority Service (privateca v1): CA pools, self-signed root CAs that issue real
X.509 certificates (signed with the `cryptography` package, so a chain can be checked), and
the pool's CA certificates.

Google's behaviour, as documented (https://cloud.google.com/certificate-authority-service/docs):
- a new CA is STAGED: it issues nothing until enabled (`enable`); a pool's CA certificates
  (`fetchCaCerts`) are its enabled CAs';
- a certificate is issued by an ENABLED CA of its pool (the one named by
  `issuingCertificateAuthorityId`, else any), from a CSR (`pemCsr`) or a `config` that carries
  the public key; it comes back with its chain;
- an ENABLED CA is not deleted: disable it first; nor one with active (unrevoked) certificates
  without `ignoreActiveCertificates`; a deleted CA stays DELETED for a grace period unless
  `skipGracePeriod`, and a pool with CAs (deleted ones included) is not deleted.
The emulator serves self-signed (root) CAs only: a SUBORDINATE one is refused as unimplemented.
The refusals' words are the emulator's own.
"""

from __future__ import annotations

import base64
import datetime
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from provision_emulator import errors, formats, generic
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.cloud import Cloud
from provision_emulator.store import Resource

RULES = ApiRules("privateca")
POOLS = "projects.locations.caPools"
CAS = "projects.locations.caPools.certificateAuthorities"
CERTIFICATES = "projects.locations.caPools.certificates"
KEY = "_privateKey"  # the CA's signing key, PEM; never answered
GRACE = 30 * 86400  # how long a deleted CA stays DELETED (its default grace period)
DAY = 86400


def _name(subject: dict[str, Any]) -> x509.Name:
    parts = [(NameOID.COMMON_NAME, subject.get("commonName")),
             (NameOID.ORGANIZATION_NAME, subject.get("organization")),
             (NameOID.ORGANIZATIONAL_UNIT_NAME, subject.get("organizationalUnit")),
             (NameOID.COUNTRY_NAME, subject.get("countryCode"))]
    return x509.Name([x509.NameAttribute(oid, str(v)) for oid, v in parts if v])


def _new_key(algorithm: str) -> Any:
    if algorithm.startswith("EC_P384"):
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm.startswith("EC_"):
        return ec.generate_private_key(ec.SECP256R1())
    bits = int(re.search(r"_(\d{4})_", algorithm).group(1))  # type: ignore[union-attr]
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _description(cert: x509.Certificate) -> dict[str, Any]:
    return {"subjectDescription": {
        "subject": {"commonName": next((a.value for a in cert.subject.get_attributes_for_oid(
            NameOID.COMMON_NAME)), "")},
        "hexSerialNumber": format(cert.serial_number, "x"),
        "notBeforeTime": formats.rfc3339(cert.not_valid_before_utc.timestamp()),
        "notAfterTime": formats.rfc3339(cert.not_valid_after_utc.timestamp()),
    }}


def _time(t: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(t, tz=datetime.UTC)


@RULES.on_create(CAS)
def _new_authority(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    if body.get("type") != "SELF_SIGNED":
        raise errors.unimplemented("The emulator serves SELF_SIGNED certificate authorities "
                                   "only.")
    algorithm = (body.get("keySpec") or {}).get("algorithm", "")
    if not algorithm or algorithm == "SIGN_HASH_ALGORITHM_UNSPECIFIED":
        raise errors.invalid("key_spec.algorithm must be set.")
    config = body.get("config") or {}
    if not ((config.get("x509Config") or {}).get("caOptions") or {}).get("isCa"):
        raise errors.invalid("config.x509_config.ca_options.is_ca must be true for a "
                             "certificate authority.")
    subject = (config.get("subjectConfig") or {}).get("subject") or {}
    if not (subject.get("commonName") or subject.get("organization")):
        raise errors.invalid("config.subject_config.subject needs a common name or an "
                             "organization.")
    pool = cloud.store.get("privateca", call.path.rsplit("/certificateAuthorities", 1)[0])
    if pool is None:
        raise errors.not_found(f"Resource '{call.path.rsplit('/', 1)[0]}' was not found")
    key = _new_key(algorithm)
    name = _name(subject)
    lifetime = formats.seconds(body.get("lifetime"), 10 * 365 * DAY)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(int(formats.digest("privateca", call.path, call.seq).hex()[:16], 16))
            .not_valid_before(_time(call.now)).not_valid_after(_time(call.now + lifetime))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    body.update(
        state="STAGED", tier=pool.body.get("tier", "ENTERPRISE"),
        pemCaCertificates=[_pem(cert)], caCertificateDescriptions=[_description(cert)],
        expireTime=formats.rfc3339(call.now + lifetime),
    )
    body[KEY] = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()


@RULES.on_read(CAS)
def _authority_as_read(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    body.pop(KEY, None)
    return body


def _set_state(cloud: Cloud, call: Call, want: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    coll = generic.collection(call)
    ca = generic.existing(cloud, call, call.path, coll)
    if ca.body.get("state") not in allowed:
        raise errors.failed_precondition(
            f"The certificate authority is {ca.body.get('state')}: it must be "
            f"{' or '.join(allowed)} to become {want}.")
    body = {**ca.body, "state": want, "updateTime": formats.rfc3339(call.now)}
    return generic.commit(cloud, call, coll, call.path, effect="put", payload=body)


@RULES.handler(f"privateca.{CAS}.enable")
def enable(cloud: Cloud, call: Call) -> dict[str, Any]:
    return _set_state(cloud, call, "ENABLED", ("STAGED", "DISABLED", "ENABLED"))


@RULES.handler(f"privateca.{CAS}.disable")
def disable(cloud: Cloud, call: Call) -> dict[str, Any]:
    return _set_state(cloud, call, "DISABLED", ("ENABLED", "DISABLED"))


@RULES.handler(f"privateca.{CAS}.delete")
def delete_authority(cloud: Cloud, call: Call) -> dict[str, Any]:
    coll = generic.collection(call)
    ca = generic.existing(cloud, call, call.path, coll)
    if ca.body.get("state") == "ENABLED":
        raise errors.failed_precondition(
            "An ENABLED certificate authority cannot be deleted: disable it first.")
    pool = ca.path.rsplit("/certificateAuthorities", 1)[0]
    active = [c for c in cloud.store.children("privateca", f"{pool}/certificates")
              if c.body.get("issuerCertificateAuthority") == ca.path
              and not c.body.get("revocationDetails")]
    if active and call.arg("ignoreActiveCertificates") != "true":
        # "ignore_active_certificates: allows the CA to be deleted even if the CA has active
        # certs" (the delete method's parameter): without it, Google refuses.
        raise errors.failed_precondition(
            f"The certificate authority has {len(active)} active certificates: revoke them, "
            "or delete with ignoreActiveCertificates.")
    if call.arg("skipGracePeriod") == "true":
        return generic.commit(cloud, call, coll, call.path, effect="delete")
    body = {**ca.body, "state": "DELETED", "deleteTime": formats.rfc3339(call.now),
            "expireTime": formats.rfc3339(call.now + GRACE)}
    return generic.commit(cloud, call, coll, call.path, effect="put", payload=body)


@RULES.on_delete(POOLS)
def _pool_delete(cloud: Cloud, call: Call, res: Resource) -> None:
    if cloud.store.children("privateca", f"{res.path}/certificateAuthorities"):
        raise errors.failed_precondition(
            "The CA pool holds certificate authorities (deleted ones count until their grace "
            "period ends): delete them, with skipGracePeriod, first.")


def _enabled(cloud: Cloud, pool: str) -> list[Resource]:
    return [r for r in cloud.store.children("privateca", f"{pool}/certificateAuthorities")
            if r.body.get("state") == "ENABLED"]


@RULES.handler(f"privateca.{POOLS}.fetchCaCerts")
def fetch_ca_certs(cloud: Cloud, call: Call) -> dict[str, Any]:
    generic.existing(cloud, call, call.path, generic.collection(call))
    return {"caCerts": [{"certificates": r.body["pemCaCertificates"]}
                        for r in _enabled(cloud, call.path)]}


@RULES.on_create(CERTIFICATES)
def _issue(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    public_key, subject, names = _requested(body)
    pem, chain, issuer = issue(cloud, call.path.rsplit("/certificates", 1)[0], public_key,
                               subject, names, formats.seconds(body.get("lifetime"), 30 * DAY),
                               call.now, call.arg("issuingCertificateAuthorityId"),
                               (call.path, call.seq))
    body.update(pemCertificate=pem, pemCertificateChain=chain, issuerCertificateAuthority=issuer,
                certificateDescription=_description(x509.load_pem_x509_certificate(
                    pem.encode())))


def issue(cloud: Cloud, pool: str, public_key: Any, subject: x509.Name, names: list[str],
          lifetime: float, now: float, wanted: str | None = None,
          seed: tuple[Any, ...] = ()) -> tuple[str, list[str], str]:
    """A leaf certificate from an ENABLED CA of `pool`: (its PEM, the chain above it, the CA's
    name). Certificate Manager issues through this too."""
    issuers = [r for r in _enabled(cloud, pool) if not wanted or r.path.endswith(f"/{wanted}")]
    if not issuers:
        raise errors.failed_precondition(
            f"No ENABLED certificate authority in {pool}"
            + (f" named {wanted}" if wanted else "") + " can issue certificates.")
    ca = issuers[0]
    ca_key = serialization.load_pem_private_key(ca.body[KEY].encode(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.body["pemCaCertificates"][0].encode())
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
               .public_key(public_key)
               .serial_number(int(formats.digest("privateca", pool, *seed, now).hex()[:16], 16))
               .not_valid_before(_time(now)).not_valid_after(_time(now + lifetime))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return _pem(cert), list(ca.body["pemCaCertificates"]), ca.path


def _requested(body: dict[str, Any]) -> tuple[Any, x509.Name, list[str]]:
    """The public key, subject and DNS names a certificate request asks for."""
    if body.get("pemCsr"):
        try:
            csr = x509.load_pem_x509_csr(str(body["pemCsr"]).encode())
        except ValueError as exc:
            raise errors.invalid("pem_csr could not be parsed.") from exc
        try:
            names = csr.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        return csr.public_key(), csr.subject, names
    config = body.get("config") or {}
    key = (config.get("publicKey") or {}).get("key")
    if not key:
        raise errors.invalid("A certificate needs pem_csr, or config.public_key.")
    try:
        public = serialization.load_pem_public_key(base64.b64decode(key))
    except ValueError as exc:
        raise errors.invalid("config.public_key.key is not a PEM public key.") from exc
    subject_config = config.get("subjectConfig") or {}
    names = list((subject_config.get("subjectAltName") or {}).get("dnsNames") or [])
    return public, _name(subject_config.get("subject") or {}), names
