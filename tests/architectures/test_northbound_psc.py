"""Architecture B, northbound, end to end: plans/northbound-psc.yaml applied on the emulator, the
load balancer's chain down to the Apigee instance checked with the real client libraries,
re-applied as a no-op, destroyed clean; an accept list without the load balancer's project
fails the NEG naming the fix; a self-managed certificate's key is never recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery

import orchestrator
from provision_emulator import Emulator, operations

from .conftest import (
    applied,
    check_destroy_leaves_nothing,
    check_every_step_is_present,
    check_reapply_makes_no_mutating_request,
    compute,
    leftovers,
)

PLAN = Path(__file__).parents[2] / "plans" / "northbound-psc.yaml"
DEMO_TLS = PLAN.parent / "demo-tls"
APIGEE = "apigee-nb-project"
EDGE = "edge-lb-project"
REGION = "europe-west1"
# Slower than the other suites' 0.001, so that a loaded machine's stall does not pass for
# an Apigee operation's deadline.
STEPS = 23



def instance(emu: Emulator) -> dict:
    apigee = discovery.build("apigee", "v1", credentials=AnonymousCredentials(),
                             static_discovery=True,
                             client_options={"api_endpoint": f"{emu.url}/apigee/"})
    return apigee.organizations().instances().get(
        name=f"organizations/{APIGEE}/instances/euw1").execute()



@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, object]]:
    with applied(PLAN, tmp_path_factory.mktemp("nb")) as pair:
        yield pair


def test_every_step_is_present(cloud) -> None:
    check_every_step_is_present(cloud[1], STEPS)


def test_neg_is_connected_to_the_instance_that_accepts_the_edge_project(cloud) -> None:
    emu, _ = cloud
    found = instance(emu)
    assert set(found["consumerAcceptList"]) == {APIGEE, EDGE}
    neg = compute(emu, "RegionNetworkEndpointGroupsClient").get(
        project=EDGE, region=REGION, network_endpoint_group="apigee-euw1")
    assert neg.network_endpoint_type == "PRIVATE_SERVICE_CONNECT"
    assert neg.psc_target_service.endswith(found["serviceAttachment"])
    assert neg.psc_data.psc_connection_status == "ACCEPTED"


def test_load_balancer_chain_ends_at_the_neg(cloud) -> None:
    emu, _ = cloud
    rule = compute(emu, "GlobalForwardingRulesClient").get(
        project=EDGE, forwarding_rule="apigee-https")
    address = compute(emu, "GlobalAddressesClient").get(project=EDGE, address="apigee-public")
    assert (rule.I_p_address, rule.port_range, rule.load_balancing_scheme) == (
        address.address, "443", "EXTERNAL_MANAGED")
    proxy = compute(emu, "TargetHttpsProxiesClient").get(project=EDGE, target_https_proxy="apigee")
    assert rule.target.endswith(f"projects/{EDGE}/global/targetHttpsProxies/apigee")
    assert [c.rsplit("/", 1)[-1] for c in proxy.ssl_certificates] == ["apigee-public"]
    url_map = compute(emu, "UrlMapsClient").get(project=EDGE, url_map="apigee")
    assert proxy.url_map.endswith(f"projects/{EDGE}/global/urlMaps/apigee")
    backend = compute(emu, "BackendServicesClient").get(project=EDGE, backend_service="apigee")
    assert url_map.default_service.endswith(f"projects/{EDGE}/global/backendServices/apigee")
    assert backend.load_balancing_scheme == "EXTERNAL_MANAGED"
    assert list(backend.health_checks) == []
    assert [b.group.rsplit("/", 1)[-1] for b in backend.backends] == ["apigee-euw1"]


def test_managed_certificate_turns_active_once_the_load_balancer_serves_it(cloud) -> None:
    # Apply does not wait for it: it is served only by the forwarding rule, made after it.
    emu, _ = cloud
    certificates = compute(emu, "SslCertificatesClient")
    emu.skip(operations.duration("compute", "sslCertificates.managed"))
    certificate = certificates.get(project=EDGE, ssl_certificate="apigee-public")
    assert certificate.managed.status == "ACTIVE"
    assert list(certificate.subject_alternative_names) == ["api.example.com"]


def test_reapply_makes_no_mutating_request(cloud) -> None:
    check_reapply_makes_no_mutating_request(*cloud)


def test_destroy_leaves_nothing_the_plan_made(cloud) -> None:
    check_destroy_leaves_nothing(*cloud, (APIGEE, EDGE))


def test_an_accept_list_without_the_edge_project_fails_the_neg_naming_the_fix(
    tmp_path: Path,
) -> None:
    text = PLAN.read_text().replace(
        'consumerAcceptList: ["${vars.apigee_project}", "${vars.edge_project}"]',
        'consumerAcceptList: ["${vars.apigee_project}"]')
    plan = tmp_path / "northbound.yaml"
    plan.write_text(text)
    with Emulator() as emu:
        dep = orchestrator.load(plan, emulator=emu,
                                state_dir=tmp_path / ".provision")
        result = dep.apply()
        assert [f.step for f in result.failures] == ["apigee-neg"]
        message = result.failures[0].message
        assert "PSC connection PENDING" in message and "consumerAcceptList" in message
        assert f"project {EDGE}" in message
        assert set(result.skipped) == {"backend-service", "url-map", "https-proxy",
                                       "forwarding-rule"}
        assert result.actions["lb-address"] == "create"  # independent work finished
        destroyed = dep.destroy()
        assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        assert leftovers(emu, (APIGEE, EDGE)) == []
        dep.close()


def test_a_self_managed_certificate_key_is_sent_and_never_recorded(tmp_path: Path) -> None:
    key = (DEMO_TLS / "api.internal.example.com.key").read_text()
    plan = tmp_path / "certificate.yaml"
    plan.write_text(f"""name: self-managed
secrets:
  cert: {{file: {DEMO_TLS}/api.internal.example.com.crt}}
  key: {{file: {DEMO_TLS}/api.internal.example.com.key}}
steps:
  - id: certificate
    kind: compute.ssl_certificate
    name: internal
    project: {EDGE}
    properties: {{certificate: "${{secrets.cert}}", privateKey: "${{secrets.key}}"}}
""")
    with Emulator() as emu:
        dep = orchestrator.load(plan, emulator=emu,
                                state_dir=tmp_path / ".provision")
        assert dep.apply().ok
        certificate = compute(emu, "SslCertificatesClient").get(
            project=EDGE, ssl_certificate="internal")
        assert certificate.type_ == "SELF_MANAGED" and not certificate.private_key
        before = len(emu.requests())
        again = dep.apply()
        assert again.ok and set(again.actions.values()) == {"noop"}
        assert [r for r in emu.requests()[before:] if r["mutating"]] == []
        assert dep.destroy().ok
        dep.close()
    body = key.split("-----")[2].strip().splitlines()[0]
    for path in (tmp_path / ".provision").glob("*.json*"):
        assert body not in path.read_text()
