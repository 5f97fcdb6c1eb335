"""Certificate Authority Service on the emulator, through Google's discovery client: a pool, a
self-signed root CA that is STAGED until enabled, the pool's CA certificates, a certificate
issued from a CSR whose chain verifies with the `cryptography` package, and Google's order of
deletion (disable, delete, then the pool)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

PARENT = "projects/pki-project/locations/europe-west1"
POOL = f"{PARENT}/caPools/internal"
CA = f"{POOL}/certificateAuthorities/root"


URL = ""  # the emulator's, while a test runs


@pytest.fixture
def pools() -> Any:
    global URL
    with Emulator() as emu:
        URL = emu.url
        api = build("privateca", "v1", credentials=AnonymousCredentials(), static_discovery=True,
                    client_options=ClientOptions(api_endpoint=f"{emu.url}/privateca/"))
        yield api.projects().locations()


def done(locations: Any, op: dict[str, Any]) -> dict[str, Any]:
    """Poll an operation as a client does, the emulator's clock moved where it would sleep."""
    while not op.get("done"):
        urllib.request.urlopen(f"{URL}/_emulator/skip",
                               data=json.dumps({"seconds": 10}).encode()).close()
        op = locations.operations().get(name=op["name"]).execute()
    assert "error" not in op, op
    return op.get("response", {})


def root_ca() -> dict[str, Any]:
    return {"type": "SELF_SIGNED", "keySpec": {"algorithm": "EC_P256_SHA256"},
            "lifetime": "315360000s",
            "config": {"subjectConfig": {"subject": {"commonName": "Internal Root",
                                                     "organization": "Example"}},
                       "x509Config": {"caOptions": {"isCa": True}}}}


def test_a_root_ca_issues_a_certificate_whose_chain_verifies(pools: Any) -> None:
    done(pools, pools.caPools().create(parent=PARENT, caPoolId="internal",
                                       body={"tier": "DEVOPS"}).execute())
    authorities = pools.caPools().certificateAuthorities()
    done(pools, authorities.create(parent=POOL, certificateAuthorityId="root",
                                   body=root_ca()).execute())
    staged = authorities.get(name=CA).execute()
    assert staged["state"] == "STAGED" and "_privateKey" not in staged
    assert pools.caPools().fetchCaCerts(caPool=POOL, body={}).execute().get("caCerts", []) == []
    with pytest.raises(HttpError) as caught:
        pools.caPools().certificates().create(parent=POOL, certificateId="early",
                                              body={"pemCsr": csr("api.internal.example.com")}
                                              ).execute()
    assert caught.value.status_code == 400

    done(pools, authorities.enable(name=CA, body={}).execute())
    [chain] = pools.caPools().fetchCaCerts(caPool=POOL, body={}).execute()["caCerts"]
    root = x509.load_pem_x509_certificate(chain["certificates"][0].encode())
    assert root.subject == root.issuer and root.extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca

    issued = pools.caPools().certificates().create(
        parent=POOL, certificateId="api", body={"pemCsr": csr("api.internal.example.com"),
                                                "lifetime": "2592000s"}).execute()
    leaf = x509.load_pem_x509_certificate(issued["pemCertificate"].encode())
    assert issued["pemCertificateChain"] == chain["certificates"]
    assert issued["issuerCertificateAuthority"] == CA
    leaf.verify_directly_issued_by(root)  # raises if the signature or issuer is wrong
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["api.internal.example.com"]


def test_deletion_goes_as_google_orders_it(pools: Any) -> None:
    done(pools, pools.caPools().create(parent=PARENT, caPoolId="internal",
                                       body={"tier": "DEVOPS"}).execute())
    authorities = pools.caPools().certificateAuthorities()
    done(pools, authorities.create(parent=POOL, certificateAuthorityId="root",
                                   body=root_ca()).execute())
    done(pools, authorities.enable(name=CA, body={}).execute())
    for call in (lambda: authorities.delete(name=CA).execute(),
                 lambda: pools.caPools().delete(name=POOL).execute()):
        with pytest.raises(HttpError) as caught:
            call()
        assert caught.value.status_code == 400
    done(pools, authorities.disable(name=CA, body={}).execute())
    done(pools, authorities.delete(name=CA, skipGracePeriod=True).execute())
    done(pools, pools.caPools().delete(name=POOL).execute())


def test_a_ca_that_is_not_one_is_refused(pools: Any) -> None:
    done(pools, pools.caPools().create(parent=PARENT, caPoolId="internal",
                                       body={"tier": "DEVOPS"}).execute())
    body = root_ca()
    body["config"]["x509Config"]["caOptions"]["isCa"] = False
    with pytest.raises(HttpError) as caught:
        pools.caPools().certificateAuthorities().create(
            parent=POOL, certificateAuthorityId="root", body=body).execute()
    assert caught.value.status_code == 400 and b"is_ca must be true" in caught.value.content


def csr(host: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
               .sign(key, hashes.SHA256()))
    return request.public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_manager_issues_from_the_pool_for_the_domains(pools: Any) -> None:
    """A Google-managed certificate with an issuance config naming the pool: issued by its CA
    for the domains, ACTIVE, its chain ending with the pool's root."""
    done(pools, pools.caPools().create(parent=PARENT, caPoolId="internal",
                                       body={"tier": "DEVOPS"}).execute())
    authorities = pools.caPools().certificateAuthorities()
    done(pools, authorities.create(parent=POOL, certificateAuthorityId="root",
                                   body=root_ca()).execute())
    done(pools, authorities.enable(name=CA, body={}).execute())
    cm = build("certificatemanager", "v1", credentials=AnonymousCredentials(),
               static_discovery=True,
               client_options=ClientOptions(api_endpoint=f"{URL}/certificatemanager/"))
    places = cm.projects().locations()
    done(places, places.certificateIssuanceConfigs().create(
        parent=PARENT, certificateIssuanceConfigId="internal", body={
            "certificateAuthorityConfig": {"certificateAuthorityServiceConfig": {"caPool": POOL}},
            "lifetime": "2592000s", "rotationWindowPercentage": 66,
            "keyAlgorithm": "ECDSA_P256"}).execute())
    done(places, places.certificates().create(parent=PARENT, certificateId="api", body={
        "managed": {"domains": ["api.internal.example.com"],
                    "issuanceConfig": f"{PARENT}/certificateIssuanceConfigs/internal"}}).execute())
    cert = places.certificates().get(name=f"{PARENT}/certificates/api").execute()
    assert cert["managed"]["state"] == "ACTIVE"
    assert cert["sanDnsnames"] == ["api.internal.example.com"]
    leaf, root = x509.load_pem_x509_certificates(cert["pemCertificate"].encode())
    [chain] = pools.caPools().fetchCaCerts(caPool=POOL, body={}).execute()["caCerts"]
    assert root == x509.load_pem_x509_certificate(chain["certificates"][0].encode())
    leaf.verify_directly_issued_by(root)
