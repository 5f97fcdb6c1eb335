"""The emulator held to Google by gcloud: Google's documented command sequences for the pieces
of both architectures, run by a client nobody here wrote, checked as a user would check them
(describe output, and Google's refusals of invalid calls).

Skipped, saying why, only where gcloud is not installed. Each test runs against an emulator of
its own, on the virtual clock: gcloud polls operations with plain reads, which the emulator
answers when the operation ends (see provision_emulator/server.py, _let_time_pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery

from provision_emulator import Emulator

from .gcloudkit import GCLOUD, Gcloud

pytestmark = pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed on this machine")

PLANS = Path(__file__).parents[2] / "plans"
PROJECT = "gc-backend"
REGION = "europe-west1"
R = f"--region={REGION}"


@pytest.fixture
def gcloud(emulator: Emulator, tmp_path: Path) -> Gcloud:
    return Gcloud.configured(emulator.url, tmp_path / "gcloud", PROJECT)


def _network(g: Gcloud, net: str = "net", cidr: str = "10.0.0.0/24") -> None:
    g.run("compute", "networks", "create", net, "--subnet-mode=custom")
    g.run("compute", "networks", "subnets", "create", f"{net}-app", f"--network={net}", R,
          f"--range={cidr}")


def test_internal_https_load_balancer_with_a_serverless_neg_published_through_psc(
    gcloud: Gcloud,
) -> None:
    """Cloud Run behind an internal Application Load Balancer, published with a service
    attachment: https://cloud.google.com/load-balancing/docs/l7-internal/setting-up-l7-internal-serverless
    and https://cloud.google.com/vpc/docs/configure-private-service-connect-producer."""
    g = gcloud
    _network(g)
    g.run("compute", "networks", "subnets", "create", "proxy-only", "--network=net", R,
          "--range=10.129.0.0/23", "--purpose=REGIONAL_MANAGED_PROXY", "--role=ACTIVE")
    g.run("compute", "networks", "subnets", "create", "psc-nat", "--network=net", R,
          "--range=10.130.0.0/24", "--purpose=PRIVATE_SERVICE_CONNECT")
    g.run("compute", "network-endpoint-groups", "create", "neg", R,
          "--network-endpoint-type=serverless", "--cloud-run-url-mask=<service>.example.com")
    g.run("compute", "backend-services", "create", "bes", R,
          "--load-balancing-scheme=INTERNAL_MANAGED", "--protocol=HTTPS")
    g.run("compute", "backend-services", "add-backend", "bes", R,
          "--network-endpoint-group=neg", f"--network-endpoint-group-region={REGION}")
    g.run("compute", "url-maps", "create", "um", R, "--default-service=bes")
    tls = PLANS / "demo-tls"
    g.run("compute", "ssl-certificates", "create", "cert", R,
          f"--certificate={tls / 'api.internal.example.com.crt'}",
          f"--private-key={tls / 'api.internal.example.com.key'}")
    g.run("compute", "target-https-proxies", "create", "tp", R, "--url-map=um",
          f"--url-map-region={REGION}", "--ssl-certificates=cert",
          f"--ssl-certificates-region={REGION}")
    g.run("compute", "addresses", "create", "ilb-ip", R, "--subnet=net-app")
    g.run("compute", "forwarding-rules", "create", "fr", R,
          "--load-balancing-scheme=INTERNAL_MANAGED", "--network=net", "--subnet=net-app",
          "--address=ilb-ip", "--ports=443", "--target-https-proxy=tp",
          f"--target-https-proxy-region={REGION}")
    g.run("compute", "service-attachments", "create", "sa", R, "--producer-forwarding-rule=fr",
          "--connection-preference=ACCEPT_MANUAL", "--consumer-accept-list=apigee-tenant=10",
          "--nat-subnets=psc-nat")

    neg = g.json("compute", "network-endpoint-groups", "describe", "neg", R)
    assert neg["networkEndpointType"] == "SERVERLESS"
    assert neg["cloudRun"]["urlMask"] == "<service>.example.com"
    backends = g.json("compute", "backend-services", "describe", "bes", R)["backends"]
    assert backends[0]["group"].endswith(f"/regions/{REGION}/networkEndpointGroups/neg")
    rule = g.json("compute", "forwarding-rules", "describe", "fr", R)
    address = g.json("compute", "addresses", "describe", "ilb-ip", R)
    assert rule["IPAddress"] == address["address"]
    assert rule["target"].endswith("/targetHttpsProxies/tp")
    attachment = g.json("compute", "service-attachments", "describe", "sa", R)
    assert attachment["targetService"].endswith("/forwardingRules/fr")
    assert attachment["natSubnets"][0].endswith("/subnetworks/psc-nat")
    assert attachment["consumerAcceptLists"] == [
        {"projectIdOrNum": "apigee-tenant", "connectionLimit": 10}]

    # Google's refusal of a range that overlaps one of the network's.
    g.run("compute", "networks", "subnets", "create", "again", "--network=net", R,
          "--range=10.0.0.128/25", fails=True)
    g.run("compute", "firewall-rules", "create", "allow-lb", "--network=net",
          "--allow=tcp:443", "--source-ranges=10.129.0.0/23")
    rules = g.json("compute", "firewall-rules", "list")
    assert [r["name"] for r in rules] == ["allow-lb"]


def test_internal_passthrough_load_balancer_with_a_managed_instance_group(
    gcloud: Gcloud, emulator: Emulator,
) -> None:
    """VMs of a regional managed instance group behind an internal passthrough Network Load
    Balancer: https://cloud.google.com/load-balancing/docs/internal/setting-up-internal, with a
    regional group, named ports and autoscaling
    (https://cloud.google.com/compute/docs/instance-groups/create-mig-with-autoscaling)."""
    g = gcloud
    _network(g)
    g.run("compute", "firewall-rules", "create", "allow-health-checks", "--network=net",
          "--allow=tcp:80", "--source-ranges=130.211.0.0/22,35.191.0.0/16",
          "--target-tags=web")
    g.run("compute", "instance-templates", "create", "web", "--machine-type=e2-small",
          "--image-family=debian-12", "--image-project=debian-cloud", "--tags=web",
          f"--subnet=projects/{PROJECT}/regions/{REGION}/subnetworks/net-app",
          "--no-address", "--metadata=startup-script=#!/bin/bash")
    g.run("compute", "instance-groups", "managed", "create", "web", R, "--size=2",
          "--template=web", "--base-instance-name=web")
    g.run("compute", "instance-groups", "managed", "set-named-ports", "web", R,
          "--named-ports=http:80")
    g.run("compute", "instance-groups", "managed", "set-autoscaling", "web", R,
          "--min-num-replicas=3", "--max-num-replicas=5", "--target-cpu-utilization=0.75")
    g.run("compute", "health-checks", "create", "tcp", "hc", R, "--port=80")
    g.run("compute", "backend-services", "create", "bes", R,
          "--load-balancing-scheme=INTERNAL", "--protocol=TCP", "--health-checks=hc",
          f"--health-checks-region={REGION}")
    g.run("compute", "backend-services", "add-backend", "bes", R, "--instance-group=web",
          f"--instance-group-region={REGION}")
    g.run("compute", "forwarding-rules", "create", "fr", R, "--load-balancing-scheme=INTERNAL",
          "--network=net", "--subnet=net-app", "--ip-protocol=TCP", "--ports=80",
          "--backend-service=bes", f"--backend-service-region={REGION}")

    group = g.json("compute", "instance-groups", "managed", "describe", "web", R)
    assert group["targetSize"] == 3 and group["namedPorts"] == [{"name": "http", "port": 80}]
    # gcloud names the autoscaler after the group, with a suffix of its own
    assert f"/regions/{REGION}/autoscalers/web-" in group["status"]["autoscaler"]
    backends = g.json("compute", "backend-services", "describe", "bes", R)["backends"]
    assert backends[0]["balancingMode"] == "CONNECTION"
    emulator.skip(60)
    instances = g.json("compute", "instance-groups", "managed", "list-instances", "web", R)
    assert [i["instanceStatus"] for i in instances] == ["RUNNING"] * 3
    health = g.json("compute", "backend-services", "get-health", "bes", R)
    states = [s["healthState"] for h in health for s in h["status"]["healthStatus"]]
    assert states == ["HEALTHY"] * 3

    # Google's refusals: a resize the autoscaler owns, a template a group uses.
    g.run("compute", "instance-groups", "managed", "resize", "web", R, "--size=4", fails=True)
    g.run("compute", "instance-templates", "delete", "web", fails=True)


def test_private_services_access_and_its_routes_and_dns(
    gcloud: Gcloud, emulator: Emulator,
) -> None:
    """Apigee's side of architecture A: https://cloud.google.com/vpc/docs/configure-private-services-access,
    route export on the peering, a private zone and DNS peering
    (https://cloud.google.com/dns/docs/zones/zones-overview)."""
    g = gcloud
    _network(g)
    g.run("compute", "addresses", "create", "psa-range", "--global", "--purpose=VPC_PEERING",
          "--prefix-length=22", "--network=net")
    # gcloud has no endpoint override for Service Networking (its api_endpoint_overrides
    # section has no such property), so `services vpc-peerings connect` cannot be pointed at
    # an emulator: the connection is made with google-api-python-client, as provision does.
    networking = discovery.build(
        "servicenetworking", "v1", credentials=AnonymousCredentials(), static_discovery=True,
        client_options={"api_endpoint": f"{emulator.url}/servicenetworking/"})
    project = g.json("projects", "describe", PROJECT)
    assert project["projectId"] == PROJECT and project["lifecycleState"] == "ACTIVE"
    networking.services().connections().create(
        parent="services/servicenetworking.googleapis.com",
        body={"network": f"projects/{project['projectNumber']}/global/networks/net",
              "reservedPeeringRanges": ["psa-range"]}).execute()
    emulator.skip(3600)  # the connection's operation done
    peerings = g.json("compute", "networks", "peerings", "list", "--network=net")
    assert [p["name"] for p in peerings[0]["peerings"]] == ["servicenetworking-googleapis-com"]
    g.run("compute", "networks", "peerings", "update", "servicenetworking-googleapis-com",
          "--network=net", "--export-custom-routes", "--import-custom-routes")
    peering = g.json("compute", "networks", "describe", "net")["peerings"][0]
    assert peering["exportCustomRoutes"] and peering["importCustomRoutes"]

    g.run("dns", "managed-zones", "create", "internal", "--dns-name=internal.example.com.",
          "--visibility=private", "--networks=net", "--description=backends")
    g.run("dns", "record-sets", "create", "api.internal.example.com.", "--zone=internal",
          "--type=A", "--ttl=300", "--rrdatas=10.0.0.5")
    records = g.json("dns", "record-sets", "list", "--zone=internal")
    assert {(r["name"], r["type"]) for r in records} >= {
        ("api.internal.example.com.", "A"), ("internal.example.com.", "SOA")}
    g.run("dns", "managed-zones", "delete", "internal", fails=True)  # not empty
    g.run("dns", "record-sets", "delete", "api.internal.example.com.", "--zone=internal",
          "--type=A")
    g.run("dns", "managed-zones", "delete", "internal")


def test_ha_vpn_between_two_networks_with_cloud_routers_and_bgp(gcloud: Gcloud) -> None:
    """Architecture B's link: https://cloud.google.com/network-connectivity/docs/vpn/how-to/creating-ha-vpn2
    (HA VPN between two Google Cloud networks), both sides in one project."""
    g = gcloud
    _network(g, "hub", "10.0.0.0/24")
    _network(g, "spoke", "10.1.0.0/24")
    for side, asn in (("hub", 64512), ("spoke", 64513)):
        g.run("compute", "vpn-gateways", "create", f"{side}-gw", f"--network={side}", R)
        g.run("compute", "routers", "create", f"{side}-router", f"--network={side}", R,
              f"--asn={asn}")
    secret = "a-shared-secret"
    for side, peer in (("hub", "spoke"), ("spoke", "hub")):
        for i in (0, 1):
            g.run("compute", "vpn-tunnels", "create", f"{side}-t{i}", R,
                  f"--peer-gcp-gateway={peer}-gw", "--ike-version=2",
                  f"--shared-secret={secret}", f"--router={side}-router",
                  f"--vpn-gateway={side}-gw", f"--interface={i}")
    for side, peer_asn, base in (("hub", 64513, 0), ("spoke", 64512, 0)):
        for i in (0, 1):
            mine, theirs = (1, 2) if side == "hub" else (2, 1)
            g.run("compute", "routers", "add-interface", f"{side}-router", R,
                  f"--interface-name=if{i}", f"--ip-address=169.254.{base + i}.{mine}",
                  "--mask-length=30", f"--vpn-tunnel={side}-t{i}")
            g.run("compute", "routers", "add-bgp-peer", f"{side}-router", R,
                  f"--peer-name=peer{i}", f"--interface=if{i}",
                  f"--peer-ip-address=169.254.{base + i}.{theirs}", f"--peer-asn={peer_asn}")

    tunnel = g.json("compute", "vpn-tunnels", "describe", "hub-t0", R)
    assert tunnel["status"] == "ESTABLISHED"
    assert tunnel["peerGcpGateway"].endswith("/vpnGateways/spoke-gw")
    assert tunnel["sharedSecret"] != secret  # Google answers with a mask, never the secret
    router = g.json("compute", "routers", "describe", "hub-router", R)
    assert [i["name"] for i in router["interfaces"]] == ["if0", "if1"]
    assert [p["peerAsn"] for p in router["bgpPeers"]] == [64513, 64513]
    status = g.json("compute", "routers", "get-status", "hub-router", R)["result"]
    assert {p["name"]: p["status"] for p in status["bgpPeerStatus"]} == {
        "peer0": "UP", "peer1": "UP"}
    learned = {r["destRange"] for r in status.get("bestRoutes", [])}
    assert "10.1.0.0/24" in learned

    # Google's refusals: a second interface of the same name, a tunnel on an interface the
    # gateway does not have.
    g.run("compute", "routers", "add-interface", "hub-router", R, "--interface-name=if0",
          "--ip-address=169.254.9.1", "--mask-length=30", "--vpn-tunnel=hub-t0", fails=True)
    g.run("compute", "vpn-tunnels", "create", "hub-t9", R, "--peer-gcp-gateway=spoke-gw",
          "--ike-version=2", f"--shared-secret={secret}", "--router=hub-router",
          "--vpn-gateway=hub-gw", "--interface=5", fails=True)


def test_shared_vpc_subnet_access_and_service_accounts(gcloud: Gcloud) -> None:
    """IAM on a subnet (https://cloud.google.com/vpc/docs/provisioning-shared-vpc) and service
    accounts (https://cloud.google.com/iam/docs/service-accounts-create)."""
    g = gcloud
    _network(g)
    g.run("iam", "service-accounts", "create", "invoker", "--display-name=Apigee invoker")
    email = f"invoker@{PROJECT}.iam.gserviceaccount.com"
    account = g.json("iam", "service-accounts", "describe", email)
    assert account["displayName"] == "Apigee invoker" and account["email"] == email
    g.run("compute", "networks", "subnets", "add-iam-policy-binding", "net-app", R,
          f"--member=serviceAccount:{email}", "--role=roles/compute.networkUser")
    policy = g.json("compute", "networks", "subnets", "get-iam-policy", "net-app", R)
    assert {"role": "roles/compute.networkUser", "members": [f"serviceAccount:{email}"]} in (
        policy["bindings"])
    listed = g.json("iam", "service-accounts", "list")
    assert [a["email"] for a in listed] == [email]
    g.run("iam", "service-accounts", "create", "Invoker_2", fails=True)  # not a valid id
    g.run("iam", "service-accounts", "delete", email)
    g.run("iam", "service-accounts", "describe", email, fails=True)


def test_what_provision_built_reads_in_gcloud_as_google_would_show_it(
    emulator: Emulator, tmp_path: Path,
) -> None:
    """Architecture A applied by provision, then looked at and changed with gcloud's Apigee,
    compute and DNS commands (https://cloud.google.com/sdk/gcloud/reference/apigee)."""
    import orchestrator

    with orchestrator.load(PLANS / "psc-cloud-run.yaml", emulator=emulator,
                           ledger=tmp_path / "l.json") as dep:
        assert dep.apply().ok
    org = "apigee-demo-project"
    g = Gcloud.configured(emulator.url, tmp_path / "gcloud", org)
    orgs = g.json("apigee", "organizations", "list")
    assert orgs == [{"name": org, "project": [org]}]  # gcloud's own shape of Google's mapping
    # (`gcloud apigee environments list` reads GET organizations/ORG/environments, a route
    # the Apigee discovery document does not have: the emulator does not serve it.)
    assert g.json("apigee", "apis", "list", f"--organization={org}") == ["shop"]
    proxy = g.json("apigee", "apis", "describe", "shop", f"--organization={org}")
    assert proxy["name"] == "shop" and proxy["revision"] == ["1"]
    deployed = g.json("apigee", "deployments", "list", f"--organization={org}", "--api=shop")
    assert [(d["environment"], d["revision"]) for d in deployed] == [("eval", "1")]
    g.run("apigee", "apis", "undeploy", "1", "--api=shop", "--environment=eval",
          f"--organization={org}")
    assert g.json("apigee", "deployments", "list", f"--organization={org}", "--api=shop") == []
    # Its targets mint Google ID tokens: Google will not deploy it without an identity (and
    # gcloud's GA deploy cannot name one).
    deploy = g.run("apigee", "apis", "deploy", "1", "--api=shop", "--environment=eval",
                   f"--organization={org}", fails=True)
    assert "MISSING_SERVICE_ACCOUNT" in deploy.stderr
    g.run("apigee", "apis", "describe", "no-such-proxy", f"--organization={org}", fails=True)

    backend = "backend-demo-project"
    attachment = g.json("compute", "service-attachments", "describe", "cloud-run-psc", R,
                        f"--project={backend}")
    assert attachment["connectedEndpoints"][0]["status"] == "ACCEPTED"
    zones = g.json("dns", "managed-zones", "list", f"--project={backend}")
    assert [z["visibility"] for z in zones] == ["private"]
    records = g.json("dns", "record-sets", "list", f"--zone={zones[0]['name']}",
                     f"--project={backend}", "--filter=type=A")
    assert [r["name"] for r in records] == ["api.internal.example.com."]

