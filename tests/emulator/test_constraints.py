"""Google's documented refusals for the compute resources of both architectures, one case each
(the constraint numbers are docs/emulator-fidelity.md's): refused with Google's 400 and words,
while the valid form of the same request, made first, is accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

P, R = "fidelity-project", "europe-west1"
NET = f"projects/{P}/global/networks/n"
GLOBAL = frozenset({"networks", "firewalls", "globalAddresses"})
TLS = Path(__file__).parents[2] / "plans" / "demo-tls"


def regional(collection: str, name: str) -> str:
    return f"projects/{P}/regions/{R}/{collection}/{name}"


class Compute:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.api = discovery.build(
            "compute", "v1", credentials=AnonymousCredentials(), static_discovery=True,
            client_options={"api_endpoint": f"{emu.url}/compute/compute/v1/"})

    def insert(self, collection: str, body: dict[str, Any]) -> None:
        resource = getattr(self.api, collection)()
        where = {"project": P, **({} if collection in GLOBAL else {"region": R})}
        resource.insert(**where, body=body).execute()
        self.emu.skip(60)  # its operation done

    def refusal(self, collection: str, body: dict[str, Any]) -> dict:
        with pytest.raises(HttpError) as caught:
            self.insert(collection, body)
        return json.loads(caught.value.content)["error"]


@pytest.fixture
def compute(emulator: Emulator) -> Compute:
    """A network with an app subnet, an active proxy-only subnet, a PSC subnet, and a load
    balancer through to a service attachment: what the refusals below are refused against."""
    c = Compute(emulator)
    c.insert("networks", {"name": "n", "autoCreateSubnetworks": False})
    c.insert("vpnGateways", {"name": "gw", "network": NET})
    c.insert("regionHealthChecks", {"name": "hc", "type": "HTTPS",
                                    "httpsHealthCheck": {"port": 443}})
    for name, cidr, extra in (
        ("app", "10.0.0.0/24", {}),
        ("proxy", "10.1.0.0/23", {"purpose": "REGIONAL_MANAGED_PROXY", "role": "ACTIVE"}),
        ("psc", "10.2.0.0/24", {"purpose": "PRIVATE_SERVICE_CONNECT"}),
    ):
        c.insert("subnetworks", {"name": name, "network": NET, "ipCidrRange": cidr, **extra})
    c.insert("regionNetworkEndpointGroups", {"name": "neg", "networkEndpointType": "SERVERLESS",
                                             "cloudRun": {"service": "orders"}})
    c.insert("regionBackendServices", {
        "name": "bes", "loadBalancingScheme": "INTERNAL_MANAGED", "protocol": "HTTPS",
        "backends": [{"group": regional("networkEndpointGroups", "neg")}]})
    c.insert("regionUrlMaps", {"name": "um", "defaultService": regional("backendServices", "bes")})
    c.insert("regionSslCertificates", {
        "name": "cert", "certificate": (TLS / "api.internal.example.com.crt").read_text(),
        "privateKey": (TLS / "api.internal.example.com.key").read_text()})
    c.insert("regionTargetHttpsProxies", {
        "name": "tp", "urlMap": regional("urlMaps", "um"),
        "sslCertificates": [regional("sslCertificates", "cert")]})
    c.insert("forwardingRules", {
        "name": "fr", "loadBalancingScheme": "INTERNAL_MANAGED", "network": NET,
        "subnetwork": regional("subnetworks", "app"), "portRange": "443",
        "target": regional("targetHttpsProxies", "tp")})
    c.insert("serviceAttachments", {
        "name": "sa", "targetService": regional("forwardingRules", "fr"),
        "connectionPreference": "ACCEPT_AUTOMATIC", "natSubnets": [regional("subnetworks", "psc")]})
    return c


def _firewall(**fields: Any) -> dict[str, Any]:
    return {"name": "fw", "network": NET, "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
            "sourceRanges": ["10.0.0.0/8"], **fields}


def _rule(subnet: str, **fields: Any) -> dict[str, Any]:
    return {"name": "fr2", "loadBalancingScheme": "INTERNAL_MANAGED", "network": NET,
            "subnetwork": regional("subnetworks", subnet), "portRange": "443",
            "target": regional("targetHttpsProxies", "tp"), **fields}


CASES = [
    ("C22 misaligned range", "subnetworks",
     {"name": "s", "network": NET, "ipCidrRange": "10.5.1.0/23"}, "Must be a CIDR address range."),
    ("C22 prefix of 33", "subnetworks",
     {"name": "s", "network": NET, "ipCidrRange": "10.5.0.0/33"}, "Must be a CIDR address range."),
    ("C23 overlap", "subnetworks",
     {"name": "s", "network": NET, "ipCidrRange": "10.0.0.128/25"},
     "Invalid IPCidrRange: 10.0.0.128/25 conflicts with existing subnetwork 'app'"),
    ("C25 proxy-only below 64 addresses", "subnetworks",
     {"name": "s", "network": NET, "ipCidrRange": "10.6.0.0/27",
      "purpose": "REGIONAL_MANAGED_PROXY", "role": "BACKUP"}, "needs at least 64 addresses"),
    ("C26 second active proxy-only", "subnetworks",
     {"name": "s", "network": NET, "ipCidrRange": "10.6.0.0/23",
      "purpose": "REGIONAL_MANAGED_PROXY", "role": "ACTIVE"},
     "An active proxy-only subnetwork 'proxy' already exists"),
    ("C27 flow logs on proxy-only", "subnetworks",
     {"name": "s", "network": NET, "ipCidrRange": "10.6.0.0/23",
      "purpose": "REGIONAL_MANAGED_PROXY", "role": "BACKUP", "logConfig": {"enable": False}},
     "Invalid field set in subnetwork with purpose REGIONAL_MANAGED_PROXY."),
    ("C34 priority", "firewalls", _firewall(priority=70000),
     "Must be less than or equal to 65535."),
    ("C35 port above 65535", "firewalls",
     _firewall(allowed=[{"IPProtocol": "tcp", "ports": ["99999"]}]),
     "Invalid port range specification."),
    ("C35 port range written with dots", "firewalls",
     _firewall(allowed=[{"IPProtocol": "tcp", "ports": ["0..65535"]}]),
     "Invalid port range specification."),
    ("C36 source range", "firewalls", _firewall(sourceRanges=["10.0.0.0/33"]),
     "Must be a CIDR address range."),
    ("C7 two serverless targets", "regionNetworkEndpointGroups",
     {"name": "neg2", "networkEndpointType": "SERVERLESS", "cloudRun": {"service": "a"},
      "cloudFunction": {"function": "f"}}, "Only one of cloudRun, appEngine"),
    ("C8 network on a serverless NEG", "regionNetworkEndpointGroups",
     {"name": "neg2", "networkEndpointType": "SERVERLESS", "cloudRun": {"service": "a"},
      "network": NET}, "network cannot be set for a network endpoint group of type SERVERLESS"),
    ("C8 default port on a serverless NEG", "regionNetworkEndpointGroups",
     {"name": "neg2", "networkEndpointType": "SERVERLESS", "cloudRun": {"service": "a"},
      "defaultPort": 443}, "defaultPort cannot be set"),
    ("C10 health check on a serverless backend", "regionBackendServices",
     {"name": "bes2", "loadBalancingScheme": "INTERNAL_MANAGED", "protocol": "HTTPS",
      "healthChecks": [f"projects/{P}/regions/{R}/healthChecks/hc"],
      "backends": [{"group": regional("networkEndpointGroups", "neg")}]},
     "A backend service cannot have a healthcheck with Serverless network endpoint group"),
    ("C12 serverless NEG behind a passthrough balancer", "regionBackendServices",
     {"name": "bes2", "loadBalancingScheme": "INTERNAL", "protocol": "TCP",
      "backends": [{"group": regional("networkEndpointGroups", "neg")}]},
     "Serverless network endpoint groups can only back Application Load Balancers"),
    ("C13 proxy without a certificate", "regionTargetHttpsProxies",
     {"name": "tp2", "urlMap": regional("urlMaps", "um")},
     "At least one SSL certificate must be specified"),
    ("C17 certificate that is not PEM", "regionSslCertificates",
     {"name": "bad", "certificate": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----",
      "privateKey": (TLS / "api.internal.example.com.key").read_text()},
     "The SSL certificate could not be parsed."),
    ("C18 key that is not PEM", "regionSslCertificates",
     {"name": "bad", "certificate": (TLS / "api.internal.example.com.crt").read_text(),
      "privateKey": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"},
     "The private key could not be parsed"),
    ("C1 forwarding rule in the proxy-only subnet", "forwardingRules", _rule("proxy"),
     "cannot have purpose REGIONAL_MANAGED_PROXY"),
    ("C2 forwarding rule in a PSC subnet", "forwardingRules", _rule("psc"),
     "cannot have purpose PRIVATE_SERVICE_CONNECT"),
    ("C3 an address outside the network", "forwardingRules",
     _rule("app", IPAddress="192.168.1.5"),
     "Address '192.168.1.5' is not in the subnetwork ranges of network 'n'."),
    ("C4 not an address", "forwardingRules", _rule("app", IPAddress="300.1.1.1"),
     "Invalid IP address specified."),
    ("C44 a tunnel without its secret", "vpnTunnels",
     {"name": "t", "vpnGateway": regional("vpnGateways", "gw"), "vpnGatewayInterface": 0,
      "peerIp": "203.0.113.1", "ikeVersion": 2},
     "Required field 'resource.sharedSecret' not specified"),
    ("C28 a NAT subnet for a second attachment", "serviceAttachments",
     {"name": "sa2", "targetService": regional("forwardingRules", "fr"),
      "connectionPreference": "ACCEPT_AUTOMATIC", "natSubnets": [regional("subnetworks", "psc")]},
     "already used by service attachment 'sa'"),
    ("C29 a NAT subnet of another purpose", "serviceAttachments",
     {"name": "sa2", "targetService": regional("forwardingRules", "fr"),
      "connectionPreference": "ACCEPT_AUTOMATIC", "natSubnets": [regional("subnetworks", "app")]},
     "The subnetwork must have purpose PRIVATE_SERVICE_CONNECT."),
    ("C37 public ASN", "routers", {"name": "r", "network": NET, "bgp": {"asn": 1}},
     "Local ASN must be either in the RFC6996 private ASN ranges: [64512..65534], "
     "[4200000000..4294967294]; or be the value of [16550]."),
]


@pytest.mark.parametrize(("collection", "body", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_google_refuses_it_in_its_own_words(
    compute: Compute, collection: str, body: dict[str, Any], words: str,
) -> None:
    error = compute.refusal(collection, body)
    assert error["code"] == 400 and error["errors"][0]["reason"] == "invalid"
    assert words in error["message"]


def test_the_external_vpc_peering_range_and_a_certificate_without_names(
    compute: Compute, tmp_path: Path,
) -> None:
    """C46 (a global address) and C16: a self-signed certificate with neither a CN nor a SAN,
    made here with cryptography, and the names and expiry Google reports of a good one."""
    error = compute.refusal("globalAddresses", {
        "name": "ga", "purpose": "VPC_PEERING", "addressType": "EXTERNAL", "prefixLength": 16,
        "network": NET})
    assert "The field cannot be specified with external address." in error["message"]

    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(x509.Name([]))
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    error = compute.refusal("regionSslCertificates",
                            {"name": "nameless", "certificate": pem, "privateKey": key_pem})
    assert ("The SSL certificate is missing a Common Name(CN) or Subject Alternative Name(SAN)."
            in error["message"])
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    good = (TLS / "api.internal.example.com.crt").read_text()
    error = compute.refusal("regionSslCertificates",
                            {"name": "mismatch", "certificate": good, "privateKey": other})
    assert "does not match" in error["message"]
    read = compute.api.regionSslCertificates().get(project=P, region=R, sslCertificate="cert")
    shown = read.execute()
    assert "api.internal.example.com" in shown["subjectAlternativeNames"]
    assert "privateKey" not in shown and shown["expireTime"]


def _client(emu: Emulator, api: str, version: str) -> Any:
    return discovery.build(api, version, credentials=AnonymousCredentials(),
                           static_discovery=True,
                           client_options={"api_endpoint": f"{emu.url}/{api}/"})


DNS_CASES = [
    ("C61 zone name without its dot", {"name": "z", "dnsName": "example.com"},
     "Invalid value for 'entity.managedZone.dnsName'"),
    ("C62 zone name starting with a digit", {"name": "1z", "dnsName": "example.com."},
     "Invalid value for 'entity.managedZone.name': '1z'"),
    ("C63 record name without its dot", [{"name": "a.example.com", "type": "A", "ttl": 300,
                                         "rrdatas": ["10.0.0.9"]}], "additions[0].name"),
    ("C64 record outside the zone", [{"name": "a.other.com.", "type": "A", "ttl": 300,
                                      "rrdatas": ["10.0.0.9"]}], "additions[0].name"),
    ("C65 CNAME beside an A", [{"name": "a.example.com.", "type": "CNAME", "ttl": 300,
                                "rrdatas": ["b.example.com."]}], "cnameResourceRecordSetConflict"),
    ("C66 CNAME with two records", [{"name": "c.example.com.", "type": "CNAME", "ttl": 300,
                                     "rrdatas": ["b.example.com.", "d.example.com."]}],
     "invalidRecordCount"),
    ("C67 CNAME at the apex", [{"name": "example.com.", "type": "CNAME", "ttl": 300,
                                "rrdatas": ["b.example.com."]}], "recordTypeDisallowedAtZoneApex"),
]


@pytest.mark.parametrize(("additions", "words"), [c[1:] for c in DNS_CASES],
                         ids=[c[0] for c in DNS_CASES])
def test_cloud_dns_refuses_it_in_its_own_words(
    emulator: Emulator, additions: list | dict, words: str,
) -> None:
    """https://cloud.google.com/dns/docs/error-messages: the reason, or the entity named.
    `additions`: a change's, or (a dict) the body of a zone that is itself refused."""
    dns = _client(emulator, "dns", "v1")
    zones = dns.managedZones()
    if isinstance(additions, dict):
        with pytest.raises(HttpError) as caught:
            zones.create(project=P, body=additions).execute()
    else:
        zones.create(project=P, body={"name": "z", "dnsName": "example.com."}).execute()
        dns.changes().create(project=P, managedZone="z", body={"additions": [
            {"name": "a.example.com.", "type": "A", "ttl": 300, "rrdatas": ["10.0.0.1"]}]}
        ).execute()
        with pytest.raises(HttpError) as caught:
            dns.changes().create(project=P, managedZone="z",
                                 body={"additions": additions}).execute()
    error = json.loads(caught.value.content)["error"]
    assert error["code"] == 400
    assert words in error["message"] or words == error["errors"][0]["reason"]


def test_cloud_run_refuses_a_service_id_in_its_own_words(emulator: Emulator) -> None:
    """C73: Cloud Run v2's CreateServiceRequest.service_id rule."""
    services = _client(emulator, "run", "v2").projects().locations().services()
    body = {"template": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]}}
    with pytest.raises(HttpError) as caught:  # C74: IngressTraffic's values only
        services.create(parent=f"projects/{P}/locations/{R}", serviceId="orders",
                        body={**body, "ingress": "EVERYONE"}).execute()
    assert "Invalid value at 'service.ingress' (TYPE_ENUM)" in json.loads(
        caught.value.content)["error"]["message"]
    for wanted in ("Orders", "orders-", "o" * 50):
        with pytest.raises(HttpError) as caught:
            services.create(parent=f"projects/{P}/locations/{R}", serviceId=wanted,
                            body=body).execute()
        assert "Violation in CreateServiceRequest.service_id" in json.loads(
            caught.value.content)["error"]["message"], wanted
    services.create(parent=f"projects/{P}/locations/{R}", serviceId="o" * 49,
                    body=body).execute()


def test_a_proxy_takes_certificate_manager_certificates_but_not_mixed_with_classic(
    compute: Compute,
) -> None:
    """C13/C15 as the discovery document words them: Certificate Manager certificates go in
    sslCertificates by their //certificatemanager.googleapis.com name, not mixed with classic
    ones."""
    cm = discovery.build("certificatemanager", "v1", credentials=AnonymousCredentials(),
                         static_discovery=True,
                         client_options={"api_endpoint": f"{compute.emu.url}/certificatemanager/"})
    cm.projects().locations().certificates().create(
        parent=f"projects/{P}/locations/{R}", certificateId="internal",
        body={"selfManaged": {
            "pemCertificate": (TLS / "api.internal.example.com.crt").read_text(),
            "pemPrivateKey": (TLS / "api.internal.example.com.key").read_text()}}).execute()
    compute.emu.skip(60)
    managed = ("//certificatemanager.googleapis.com/"
               f"projects/{P}/locations/{R}/certificates/internal")
    compute.insert("regionTargetHttpsProxies", {
        "name": "tp-cm", "urlMap": regional("urlMaps", "um"), "sslCertificates": [managed]})
    error = compute.refusal("regionTargetHttpsProxies", {
        "name": "tp-mixed", "urlMap": regional("urlMaps", "um"),
        "sslCertificates": [managed, regional("sslCertificates", "cert")]})
    assert error["code"] == 400 and "Mixing Classic Certificates" in error["message"]
    read = cm.projects().locations().certificates().get(
        name=f"projects/{P}/locations/{R}/certificates/internal").execute()
    assert "pemPrivateKey" not in read["selfManaged"]
    assert read["sanDnsnames"] == ["api.internal.example.com"]
    assert [u["name"].rsplit("/", 1)[-1] for u in read["usedBy"]] == ["tp-cm"]
