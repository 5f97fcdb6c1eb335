"""Architecture A end to end: plans/psc-cloud-run.yaml applied on the emulator, its wiring
checked with the real client libraries, re-applied as a no-op, destroyed clean."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import compute_v1, dns, run_v2
from googleapiclient import discovery

import orchestrator
from provision_emulator import Emulator

from .conftest import (
    applied,
    check_destroy_leaves_nothing,
    check_every_step_is_present,
    check_reapply_makes_no_mutating_request,
)

PLAN = Path(__file__).parents[2] / "plans" / "psc-cloud-run.yaml"
APIGEE = "apigee-demo-project"
BACKEND = "backend-demo-project"
REGION = "europe-west1"
DOMAIN = "api.internal.example.com"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, object]]:
    with applied(PLAN, tmp_path_factory.mktemp("psc")) as pair:
        yield pair


def _creds() -> dict:
    return {"credentials": AnonymousCredentials()}


def _apigee(emu: Emulator):
    return discovery.build("apigee", "v1", static_discovery=True, **_creds(),
                           client_options={"api_endpoint": f"{emu.url}/apigee/"})


def test_every_step_is_present(cloud) -> None:
    check_every_step_is_present(cloud[1], 55)


def test_endpoint_attachment_is_accepted(cloud) -> None:
    emu, _ = cloud
    attachment = _apigee(emu).organizations().endpointAttachments().get(
        name=f"organizations/{APIGEE}/endpointAttachments/cloud-run-backends").execute()
    assert attachment["connectionState"] == "ACCEPTED"
    assert attachment["serviceAttachment"] == (
        f"projects/{BACKEND}/regions/{REGION}/serviceAttachments/cloud-run-psc")


def test_a_records_point_at_the_endpoint_attachment_and_the_load_balancer(cloud) -> None:
    emu, _ = cloud
    attachment = _apigee(emu).organizations().endpointAttachments().get(
        name=f"organizations/{APIGEE}/endpointAttachments/cloud-run-backends").execute()
    rule = compute_v1.ForwardingRulesClient(
        **_creds(), client_options=ClientOptions(api_endpoint=f"{emu.url}/compute")
    ).get(project=BACKEND, region=REGION, forwarding_rule="cloud-run-ilb")

    def a_record(project: str, zone: str) -> list[str]:
        client = dns.Client(project=project, **_creds(),
                            client_options=ClientOptions(api_endpoint=f"{emu.url}/dns"))
        records = client.zone(zone).list_resource_record_sets()
        return next(r.rrdatas for r in records if r.record_type == "A" and r.name == f"{DOMAIN}.")

    assert a_record(APIGEE, "internal-example-apigee") == [attachment["host"]]
    assert a_record(BACKEND, "internal-example-backend") == [rule.I_p_address]


def test_each_service_lets_the_proxy_identity_invoke_it(cloud) -> None:
    emu, _ = cloud
    client = run_v2.ServicesClient(**_creds(), transport="rest",
                                   client_options=ClientOptions(api_endpoint=f"{emu.url}/run"))
    member = f"serviceAccount:apigee-invoker@{APIGEE}.iam.gserviceaccount.com"
    for service in ("orders", "catalog", "payments"):
        policy = client.get_iam_policy(request={
            "resource": f"projects/{BACKEND}/locations/{REGION}/services/{service}"})
        invokers = [b for b in policy.bindings if b.role == "roles/run.invoker"]
        assert [list(b.members) for b in invokers] == [[member]]
        svc = client.get_service(name=f"projects/{BACKEND}/locations/{REGION}/services/{service}")
        assert svc.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
        assert list(svc.custom_audiences) == [f"https://{DOMAIN}/{service}"]


def test_deployed_proxy_mints_id_tokens_for_the_custom_audience_with_the_service_account(
    cloud,
) -> None:
    emu, _ = cloud
    apigee = _apigee(emu)
    base = f"organizations/{APIGEE}/environments/eval/apis/shop"
    deployments = apigee.organizations().environments().apis().deployments().list(
        parent=base).execute()["deployments"]
    revision = deployments[0]["revision"]
    deployment = apigee.organizations().environments().apis().revisions().getDeployments(
        name=f"{base}/revisions/{revision}").execute()
    assert deployment["state"] == "READY"
    assert deployment["serviceAccount"] == f"apigee-invoker@{APIGEE}.iam.gserviceaccount.com"
    bundle = AuthorizedSession(AnonymousCredentials()).get(
        f"{emu.url}/apigee/v1/organizations/{APIGEE}/apis/shop/revisions/{revision}",
        params={"format": "bundle"})
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as zf:
        target = ET.fromstring(zf.read("apiproxy/targets/orders.xml"))
        policy = ET.fromstring(zf.read("apiproxy/policies/AM-Audience-orders.xml"))
    audience = target.find("HTTPTargetConnection/Authentication/GoogleIDToken/Audience")
    assert audience is not None
    assert policy.findtext("AssignVariable/Name") == audience.get("ref")
    assert policy.findtext("AssignVariable/Value") == f"https://{DOMAIN}/orders"
    # No path: Apigee appends the suffix (/orders/...), which the URL mask routes by.
    assert target.findtext("HTTPTargetConnection/URL") == f"https://{DOMAIN}"
    # TLS verified against the truststore holding the plan's own CA root.
    assert target.findtext("HTTPTargetConnection/SSLInfo/Enforce") == "true"
    assert target.findtext("HTTPTargetConnection/SSLInfo/TrustStore") == "ref://backends-trust"


def test_apigee_organization_never_ran_two_operations_at_once(cloud) -> None:
    emu, _ = cloud
    refused = [r for r in emu.requests()
               if r["api"] == "apigee" and r["status"] == 400 and r["mutating"]]
    assert refused == []  # no mutation met "locked by another operation"
    operations = [op for op in emu.dump()["operations"]
                  if op["api"] == "apigee" and op["path"].startswith(f"organizations/{APIGEE}/")]
    spans = sorted((op["start"], op["end"]) for op in operations)
    # organization, instance, environment, envgroup, two attachments, endpoint attachment
    assert len(spans) == 7
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end


def test_reapply_makes_no_mutating_request(cloud) -> None:
    check_reapply_makes_no_mutating_request(*cloud)


def test_destroy_leaves_nothing_the_plan_made(cloud) -> None:
    check_destroy_leaves_nothing(*cloud, (APIGEE, BACKEND))


def test_an_accept_list_without_the_tenant_project_fails_the_attachment_naming_the_fix(
    tmp_path: Path,
) -> None:
    text = PLAN.read_text().replace(
        'projectIdOrNum: "${org.apigeeProjectId}"', "projectIdOrNum: some-other-project")
    plan = tmp_path / "wrong-accept-list.yaml"
    plan.write_text(text.replace("demo-tls/", f"{PLAN.parent}/demo-tls/"))
    with Emulator() as emu:
        dep = orchestrator.load(plan, emulator=emu,
                                state_dir=tmp_path / ".provision")
        result = dep.apply()
        dep.close()
    assert [f.step for f in result.failures] == ["endpoint-attachment"]
    message = result.failures[0].message
    assert "PENDING" in message and "consumerAcceptLists" in message
    assert "apigeeProjectId" in message
    assert {"apigee-record", "proxy"} <= set(result.skipped)
    assert result.actions["backend-record"] == "create"  # independent work finished


def test_a_second_endpoint_attachment_to_one_service_attachment_fails_with_google_s_words(
    tmp_path: Path,
) -> None:
    """Google answers it 409 though nothing has its name: the step fails at once with the
    reason, instead of waiting for a resource that will never read back."""
    second = (
        "  - id: endpoint-attachment-2\n    kind: apigee.endpoint_attachment\n"
        "    name: cloud-run-backends-2\n    organization: ${org.name}\n    properties:\n"
        "      location: ${vars.region}\n      serviceAttachment: ${service-attachment.path}\n"
        "    depends_on: [endpoint-attachment]\n"
    )
    text = PLAN.read_text().replace("  - id: apigee-zone\n", second + "  - id: apigee-zone\n")
    plan = tmp_path / "two-attachments.yaml"
    plan.write_text(text.replace("demo-tls/", f"{PLAN.parent}/demo-tls/"))
    with Emulator() as emu:
        dep = orchestrator.load(plan, emulator=emu, state_dir=tmp_path / ".provision")
        result = dep.apply()
        dep.close()
    assert [f.step for f in result.failures] == ["endpoint-attachment-2"]
    message = result.failures[0].message
    assert "only one per service attachment" in message and "409" in message
    assert "does not read back" not in message
