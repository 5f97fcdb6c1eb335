"""The northbound path to Apigee X: an external HTTPS load balancer whose backend is a Private
Service Connect NEG on the Apigee instance's service attachment. Apigee through
google-api-python-client, the rest through google-cloud-compute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from provision_emulator import Emulator

from .conftest import PROJECT, REGION
from .test_apigee import FAST, ORG, Cloud

CONSUMER = "proj-consumer"  # a project outside the instance's accept list at first
DOMAIN = "api.example.com"
# Apigee's operations short; a managed certificate's provisioning up to Google's hour (3.6 s real),
# which the test skips rather than waits out.
DURATIONS = {**FAST, "compute.sslCertificates.managed": 3600.0}


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(durations=DURATIONS) as emu:
        yield emu


@pytest.fixture
def cloud(server: Emulator) -> Cloud:
    server.reset()
    return Cloud(server.url)


@pytest.fixture
def instance(cloud: Cloud) -> dict[str, Any]:
    """An Apigee organization in PROJECT with one instance (accepting PROJECT, the default)."""
    cloud.peered_network()
    cloud.org()
    return cloud.instance()["response"]


def psc_neg(cloud: Cloud, target: str, project: str = PROJECT, region: str = REGION) -> None:
    """A PSC NEG on `target`, in a `net` of `project` with a subnet for its address."""
    if project != PROJECT:
        cloud.network(project=project)
    subnet = compute_v1.Subnetwork(
        name="neg-subnet", ip_cidr_range="10.100.0.0/24", network="global/networks/net"
    )
    cloud.compute.wait(
        cloud.compute.subnetworks.insert(
            project=project, region=region, subnetwork_resource=subnet
        ),
        project,
    )
    neg = compute_v1.NetworkEndpointGroup(
        name="apigee-neg",
        network_endpoint_type="PRIVATE_SERVICE_CONNECT",
        psc_target_service=target,
        network="global/networks/net",
        subnetwork=f"regions/{region}/subnetworks/neg-subnet",
    )
    cloud.compute.wait(
        cloud.compute.region_network_endpoint_groups.insert(
            project=project, region=region, network_endpoint_group_resource=neg
        ),
        project,
    )


def neg_status(cloud: Cloud, project: str = PROJECT) -> str:
    neg = cloud.compute.region_network_endpoint_groups.get(
        project=project, region=REGION, network_endpoint_group="apigee-neg"
    )
    return neg.psc_data.psc_connection_status


def test_neg_is_accepted_from_the_organization_project(cloud: Cloud, instance: dict) -> None:
    psc_neg(cloud, instance["serviceAttachment"])
    neg = cloud.compute.region_network_endpoint_groups.get(
        project=PROJECT, region=REGION, network_endpoint_group="apigee-neg"
    )
    assert neg.psc_data.psc_connection_status == "ACCEPTED"
    assert neg.psc_data.consumer_psc_address.startswith("10.100.0.")
    assert neg.psc_data.psc_connection_id
    assert neg.psc_target_service.endswith(instance["serviceAttachment"])


def test_neg_of_another_project_waits_for_the_accept_list(cloud: Cloud, instance: dict) -> None:
    psc_neg(cloud, instance["serviceAttachment"], CONSUMER)
    assert neg_status(cloud, CONSUMER) == "PENDING"

    patch = cloud.apigee.instances().patch(
        name=f"{ORG}/instances/eu1",
        updateMask="consumer_accept_list",
        body={"consumerAcceptList": [PROJECT, CONSUMER]},
    )
    cloud.wait(patch.execute())
    assert neg_status(cloud, CONSUMER) == "ACCEPTED"  # read afresh from the attachment

    cloud.wait(cloud.apigee.instances().delete(name=f"{ORG}/instances/eu1").execute())
    assert neg_status(cloud, CONSUMER) == "CLOSED"


def test_neg_must_be_in_the_attachment_region(cloud: Cloud, instance: dict) -> None:
    with pytest.raises(exceptions.BadRequest, match="same region"):
        psc_neg(cloud, instance["serviceAttachment"], region="europe-west1")


def test_external_https_load_balancer_to_the_instance(
    server: Emulator, cloud: Cloud, instance: dict
) -> None:
    compute = cloud.compute
    psc_neg(cloud, instance["serviceAttachment"])
    neg = f"projects/{PROJECT}/regions/{REGION}/networkEndpointGroups/apigee-neg"

    # A backend service of PSC NEGs takes no health checks.
    compute.wait(
        compute.health_checks.insert(
            project=PROJECT,
            health_check_resource={"name": "hc", "type_": "TCP", "tcp_health_check": {"port": 443}},
        )
    )
    backend = {
        "name": "apigee-backend",
        "load_balancing_scheme": "EXTERNAL_MANAGED",
        "protocol": "HTTPS",
        "backends": [{"group": neg}],
    }
    with pytest.raises(exceptions.BadRequest, match="Private Service Connect network endpoint"):
        compute.backend_services.insert(
            project=PROJECT,
            backend_service_resource={**backend, "health_checks": ["global/healthChecks/hc"]},
        )
    compute.wait(compute.backend_services.insert(project=PROJECT, backend_service_resource=backend))

    compute.wait(
        compute.url_maps.insert(
            project=PROJECT,
            url_map_resource={
                "name": "apigee-map",
                "default_service": "global/backendServices/apigee-backend",
            },
        )
    )
    certificate = {"name": "apigee-cert", "type_": "MANAGED", "managed": {"domains": [DOMAIN]}}
    compute.wait(
        compute.ssl_certificates.insert(project=PROJECT, ssl_certificate_resource=certificate)
    )
    compute.wait(
        compute.target_https_proxies.insert(
            project=PROJECT,
            target_https_proxy_resource={
                "name": "apigee-proxy",
                "url_map": "global/urlMaps/apigee-map",
                "ssl_certificates": ["global/sslCertificates/apigee-cert"],
            },
        )
    )
    compute.wait(
        compute.global_addresses.insert(
            project=PROJECT, address_resource={"name": "apigee-ip", "address_type": "EXTERNAL"}
        )
    )
    address = compute.global_addresses.get(project=PROJECT, address="apigee-ip")

    def read_certificate() -> compute_v1.SslCertificate:
        return compute.ssl_certificates.get(project=PROJECT, ssl_certificate="apigee-cert")

    # No load balancer serves the certificate yet: it stays PROVISIONING.
    assert read_certificate().managed.status == "PROVISIONING"
    with pytest.raises(exceptions.NotFound):  # references are checked
        compute.global_forwarding_rules.insert(
            project=PROJECT,
            forwarding_rule_resource={
                "name": "apigee-rule",
                "target": "global/targetHttpsProxies/missing",
            },
        )
    compute.wait(
        compute.global_forwarding_rules.insert(
            project=PROJECT,
            forwarding_rule_resource={
                "name": "apigee-rule",
                "load_balancing_scheme": "EXTERNAL_MANAGED",
                "I_p_address": address.self_link,
                "port_range": "443",
                "target": "global/targetHttpsProxies/apigee-proxy",
            },
        )
    )
    rule = compute.global_forwarding_rules.get(project=PROJECT, forwarding_rule="apigee-rule")
    assert rule.I_p_address == address.address
    assert rule.network_tier == "PREMIUM"
    assert compute.global_addresses.get(project=PROJECT, address="apigee-ip").status == "IN_USE"

    # Served now: provisioning takes its while, then the certificate is ACTIVE.
    provisioning = read_certificate()
    assert provisioning.managed.status == "PROVISIONING"
    assert dict(provisioning.managed.domain_status) == {DOMAIN: "PROVISIONING"}
    server.skip(DURATIONS["compute.sslCertificates.managed"] / 2)
    assert read_certificate().managed.status == "PROVISIONING"
    server.skip(DURATIONS["compute.sslCertificates.managed"] / 2)
    active = read_certificate()
    assert dict(active.managed.domain_status) == {DOMAIN: "ACTIVE"}
    assert list(active.subject_alternative_names) == [DOMAIN]
    assert active.expire_time

    # What the load balancer uses cannot go from under it.
    with pytest.raises(exceptions.BadRequest) as caught:
        compute.region_network_endpoint_groups.delete(
            project=PROJECT, region=REGION, network_endpoint_group="apigee-neg"
        )
    assert caught.value.errors[0]["reason"] == "resourceInUseByAnotherResource"


def test_self_managed_certificate_key_is_never_answered(cloud: Cloud) -> None:
    tls = Path(__file__).parents[2] / "plans" / "demo-tls"  # a certificate Google would take
    pem = (tls / "api.internal.example.com.crt").read_text()
    key = (tls / "api.internal.example.com.key").read_text()
    with pytest.raises(exceptions.BadRequest, match="privateKey"):
        cloud.compute.ssl_certificates.insert(
            project=PROJECT, ssl_certificate_resource={"name": "own", "certificate": pem}
        )
    cloud.compute.wait(
        cloud.compute.ssl_certificates.insert(
            project=PROJECT,
            ssl_certificate_resource={"name": "own", "certificate": pem, "private_key": key},
        )
    )
    got = cloud.compute.ssl_certificates.get(project=PROJECT, ssl_certificate="own")
    assert got.type_ == "SELF_MANAGED" and got.certificate == pem
    assert got.private_key == ""
