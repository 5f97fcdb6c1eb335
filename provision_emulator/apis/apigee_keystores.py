"""Apigee keystores and truststores of an environment, their aliases, and references to them.

Google's behaviour, as documented (https://cloud.google.com/apigee/docs/api-platform/system-administration/keystores-truststores
and the aliases.create reference):
- a keystore holds aliases; one that holds only certificates (no key) serves as a truststore;
- an alias is created from an upload: `format=keycertfile` takes a multipart form with a
  `certFile` (PEM) and, for a key store, a `keyFile`; the alias then answers its certificates'
  details (`certsInfo`), its type (`cert` or `keycert`), and `getCertificate` the PEM;
  a certificate that does not parse is refused, as is an expired one unless
  `ignoreExpiryValidation`;
- a reference (`resourceType: KeyStore`) names a keystore of the same environment, so that a
  TargetEndpoint's `<TrustStore>ref://NAME</TrustStore>` can be repointed without a redeploy.
The emulator takes `keycertfile` uploads only (pkcs12 and selfsignedcert are refused as
unimplemented); the refusals' words are its own.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
from typing import TYPE_CHECKING, Any

from cryptography import x509

from provision_emulator import errors
from provision_emulator.call import Call, Raw
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.apis.base import ApiRules
    from provision_emulator.cloud import Cloud

KEYSTORES = "organizations.environments.keystores"
ALIASES = "organizations.environments.keystores.aliases"
REFERENCES = "organizations.environments.references"
PEM = "_pem"  # the alias's certificates, PEM; answered by getCertificate only


def _upload(call: Call) -> dict[str, bytes]:
    """The parts of a multipart upload sent as a google.api.HttpBody."""
    body = call.body if isinstance(call.body, dict) else {}
    content_type = str(body.get("contentType") or "")
    data = str(body.get("data") or "")
    try:
        raw = base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_")
    except (binascii.Error, ValueError) as exc:
        raise errors.invalid("The upload's data is not base64.") from exc
    if not content_type.startswith("multipart/form-data"):
        raise errors.invalid("An alias is uploaded as multipart/form-data.")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts[str(name)] = part.get_payload(decode=True) or b""
    return parts


def _cert_info(cert: x509.Certificate) -> dict[str, Any]:
    try:
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    return {
        "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
        "serialNumber": format(cert.serial_number, "x"),
        "expiryDate": str(int(cert.not_valid_after_utc.timestamp() * 1000)),
        "validFrom": str(int(cert.not_valid_before_utc.timestamp() * 1000)),
        "subjectAlternativeNames": list(names), "basicConstraints": f"CA:{str(ca).upper()}",
        "isValid": "Yes", "version": 3,
    }


def create_alias(cloud: Cloud, call: Call) -> dict[str, Any]:
    store_path = call.path.rsplit("/aliases", 1)[0]
    if cloud.store.get("apigee", store_path) is None:
        raise errors.not_found(f"Keystore {store_path} not found.")
    name = call.arg("alias")
    if not name:
        raise errors.invalid("alias must be set.")
    path = f"{store_path}/aliases/{name}"
    if cloud.store.get("apigee", path) is not None:
        raise errors.already_exists(f"Alias {name} already exists in {store_path}.")
    if call.arg("format") != "keycertfile":
        raise errors.unimplemented("The emulator takes keycertfile uploads only.")
    parts = _upload(call)
    if not parts.get("certFile"):
        raise errors.invalid("A keycertfile upload needs a certFile.")
    try:
        certs = x509.load_pem_x509_certificates(parts["certFile"])
    except ValueError as exc:
        raise errors.invalid("certFile does not hold a PEM certificate.") from exc
    if call.arg("ignoreExpiryValidation") != "true" and any(
            c.not_valid_after_utc.timestamp() < call.now for c in certs):
        raise errors.invalid("The certificate has expired (use ignoreExpiryValidation).")
    body = {"alias": name, "type": "keycert" if parts.get("keyFile") else "cert",
            "certsInfo": {"certInfo": [_cert_info(c) for c in certs]},
            PEM: parts["certFile"].decode()}
    cloud.put(Resource("apigee", path, ALIASES, body, call.now, (("apigee", store_path),)))
    return _public(body)


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("_")}


def get_alias(cloud: Cloud, call: Call) -> dict[str, Any]:
    return _public(_alias(cloud, call.path).body)


def _alias(cloud: Cloud, path: str) -> Resource:
    res = cloud.store.get("apigee", path)
    if res is None:
        raise errors.not_found(f"Alias {path} not found.")
    return res


def get_certificate(cloud: Cloud, call: Call) -> Raw:
    return Raw(_alias(cloud, call.path).body[PEM].encode(), content_type="application/x-pem-file")


def delete_alias(cloud: Cloud, call: Call) -> dict[str, Any]:
    res = _alias(cloud, call.path)
    cloud.remove("apigee", res.path)
    return _public(res.body)


def register(rules: ApiRules) -> None:
    handlers = {
        "keystores.aliases.create": create_alias,
        "keystores.aliases.get": get_alias,
        "keystores.aliases.getCertificate": get_certificate,
        "keystores.aliases.delete": delete_alias,
    }
    for method, handler in handlers.items():
        rules.handler(f"apigee.organizations.environments.{method}")(handler)

    @rules.on_read(KEYSTORES)
    def _keystore_as_read(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
        body["aliases"] = sorted(r.path.rsplit("/", 1)[-1]
                                 for r in cloud.store.children("apigee", f"{res.path}/aliases"))
        return body

    @rules.on_create(REFERENCES)
    def _reference(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
        if body.get("resourceType") != "KeyStore":
            raise errors.invalid("resourceType must be KeyStore.")
        env = call.path.rsplit("/references", 1)[0]
        if cloud.store.get("apigee", f"{env}/keystores/{body.get('refers')}") is None:
            raise errors.invalid(f"refers: keystore {body.get('refers')} not found in {env}.")
