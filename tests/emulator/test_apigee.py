"""Apigee through google-api-python-client (and google-cloud-compute for the networks and the
service attachments around it)."""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

from .conftest import PROJECT, REGION, Compute

ORG = f"organizations/{PROJECT}"
PSA = "services/servicenetworking.googleapis.com"
PRODUCER = "producer-one"  # the project of the backend behind an endpoint attachment
# Every operation short, so the tests run in milliseconds; `slow` keeps one in flight longer.
FAST = {
    "compute": 1.0,
    "servicenetworking": 5.0,
    "apigee": 5.0,
    "apigee.organizations.environments.apis.revisions.deployments": 5.0,
    "servicenetworking.producerRelease": 3600.0,
}
POLL = 10.0  # simulated seconds between a client's polls of an operation or a state


def error_of(exc: HttpError) -> dict[str, Any]:
    return json.loads(exc.content)["error"]


class Cloud:
    """The clients of one emulator, and the setup steps the tests share."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.compute = Compute(url)

    @functools.cache  # noqa: B019 - one client per API per emulator
    def api(self, name: str, version: str) -> Any:
        return discovery.build(
            name,
            version,
            credentials=AnonymousCredentials(),
            static_discovery=True,
            client_options={"api_endpoint": f"{self.url}/{name}/"},
        )

    @property
    def apigee(self) -> Any:
        return self.api("apigee", "v1").organizations()

    def skip(self, seconds: float = POLL) -> None:
        """Move the emulator's clock ahead, where a client would sleep between polls."""
        body = json.dumps({"seconds": seconds}).encode()
        urllib.request.urlopen(f"{self.url}/_emulator/skip", data=body).close()

    def wait(self, op: dict[str, Any], api: str = "apigee") -> dict[str, Any]:
        """Get a long-running operation until it is done, as a client polls one."""
        ops = self.apigee.operations() if api == "apigee" else self.api(api, "v1").operations()
        while not op.get("done"):
            self.skip()
            op = ops.get(name=op["name"]).execute()
        return op

    def number(self, project: str = PROJECT) -> str:
        found = self.api("cloudresourcemanager", "v3").projects().get(name=f"projects/{project}")
        return found.execute()["name"].split("/")[1]

    def network(self, name: str = "net", project: str = PROJECT) -> None:
        op = self.compute.networks.insert(project=project, network_resource={"name": name})
        self.compute.wait(op, project)

    def peered_network(self) -> None:
        """Network `net` with /22 and /28 ranges, connected through Service Networking."""
        self.network()
        for address, cidr in (("psa-runtime", "10.20.0.0/22"), ("psa-support", "10.21.0.0/28")):
            ip, prefix = cidr.split("/")
            self.compute.wait(
                self.compute.global_addresses.insert(
                    project=PROJECT,
                    address_resource=compute_v1.Address(
                        name=address,
                        address=ip,
                        prefix_length=int(prefix),
                        purpose="VPC_PEERING",
                        address_type="INTERNAL",
                        network="global/networks/net",
                    ),
                )
            )
        body = {
            "network": f"projects/{self.number()}/global/networks/net",
            "reservedPeeringRanges": ["psa-runtime", "psa-support"],
        }
        sn = self.api("servicenetworking", "v1").services().connections()
        self.wait(sn.create(parent=PSA, body=body).execute(), "servicenetworking")

    def org(self, **fields: Any) -> dict[str, Any]:
        body = {"analyticsRegion": REGION, "runtimeType": "CLOUD", "authorizedNetwork": "net"}
        body = {k: v for k, v in {**body, **fields}.items() if v is not None}
        op = self.apigee.create(parent=f"projects/{PROJECT}", body=body).execute()
        return self.wait(op)

    def instance(self, name: str = "eu1", location: str = REGION, **fields: Any) -> dict:
        body = {"name": name, "location": location, **fields}
        return self.wait(self.apigee.instances().create(parent=ORG, body=body).execute())

    def environment(self, name: str = "test") -> dict[str, Any]:
        return self.wait(
            self.apigee.environments().create(parent=ORG, body={"name": name}).execute()
        )

    def producer_attachment(self, **fields: Any) -> str:
        """A service attachment in the producer project (behind it: an internal load balancer
        in real life); its path."""
        self.network("backend", PRODUCER)
        subnet = compute_v1.Subnetwork(
            name="psc-nat",
            ip_cidr_range="10.50.0.0/24",
            purpose="PRIVATE_SERVICE_CONNECT",
            network="global/networks/backend",
        )
        self.compute.wait(
            self.compute.subnetworks.insert(
                project=PRODUCER, region=REGION, subnetwork_resource=subnet
            ),
            PRODUCER,
        )
        attachment = {
            "name": "backend-sa",
            "connection_preference": "ACCEPT_MANUAL",
            "nat_subnets": [f"projects/{PRODUCER}/regions/{REGION}/subnetworks/psc-nat"],
            **fields,
        }
        self.compute.wait(
            self.compute.service_attachments.insert(
                project=PRODUCER, region=REGION, service_attachment_resource=attachment
            ),
            PRODUCER,
        )
        return f"projects/{PRODUCER}/regions/{REGION}/serviceAttachments/backend-sa"


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(durations=FAST) as emu:
        yield emu


@pytest.fixture
def cloud(server: Emulator) -> Cloud:
    server.reset()
    return Cloud(server.url)


@pytest.fixture
def org(cloud: Cloud) -> dict[str, Any]:
    cloud.peered_network()
    return cloud.org()["response"]


def bundle(*, auth: bool = True) -> bytes:
    target = (
        "<TargetEndpoint name='default'><HTTPTargetConnection>"
        + ("<Authentication><GoogleIDToken><Audience>https://svc.a.run.app</Audience>"
           "</GoogleIDToken></Authentication>" if auth else "")
        + "<URL>https://svc.example.com</URL></HTTPTargetConnection></TargetEndpoint>"
    )  # fmt: skip
    files = {
        "apiproxy/hello.xml": "<APIProxy name='hello'><BasePaths>/hello</BasePaths></APIProxy>",
        "apiproxy/proxies/default.xml": (
            "<ProxyEndpoint name='default'><HTTPProxyConnection><BasePath>/hello</BasePath>"
            "</HTTPProxyConnection></ProxyEndpoint>"
        ),
        "apiproxy/targets/default.xml": target,
        "apiproxy/policies/AM-Audience.xml": "<AssignMessage name='AM-Audience'/>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            # A fixed time: an entry named by a string is stamped with the current time, and
            # two bundles made across a two-second boundary differed.
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


# --- organizations --------------------------------------------------------------------------


def test_organization_needs_a_service_networking_connection(cloud: Cloud) -> None:
    cloud.network()
    with pytest.raises(HttpError) as caught:
        cloud.org()
    assert caught.value.status_code == 400
    assert error_of(caught.value)["status"] == "FAILED_PRECONDITION"
    assert "not peered with Service Networking" in error_of(caught.value)["message"]
    with pytest.raises(HttpError) as caught:
        cloud.org(authorizedNetwork="missing")
    assert caught.value.status_code == 400
    # Without VPC peering, no network is needed.
    done = cloud.org(authorizedNetwork=None, disableVpcPeering=True)
    assert done["response"]["state"] == "ACTIVE"


def test_organization_create_is_a_long_running_operation(cloud: Cloud) -> None:
    cloud.peered_network()
    body = {"analyticsRegion": REGION, "runtimeType": "CLOUD", "authorizedNetwork": "net"}
    started = cloud.apigee.create(parent=f"projects/{PROJECT}", body=body).execute()
    assert re.fullmatch(rf"{ORG}/operations/[0-9a-f-]{{36}}", started["name"])
    assert started["metadata"] == {
        "@type": "type.googleapis.com/google.cloud.apigee.v1.OperationMetadata",
        "operationType": "INSERT",
        "targetResourceName": ORG,
        "state": "IN_PROGRESS",
        "progress": started["metadata"]["progress"],
    }
    done = cloud.wait(started)
    assert done["metadata"]["state"] == "FINISHED"
    assert done["response"]["@type"] == "type.googleapis.com/google.cloud.apigee.v1.Organization"

    org = cloud.apigee.get(name=ORG).execute()
    assert org["name"] == PROJECT and org["projectId"] == PROJECT
    assert org["state"] == "ACTIVE"
    assert re.fullmatch(r"t[0-9a-f]+-tp", org["apigeeProjectId"])
    assert org["subscriptionType"] == "PAID" and org["createdAt"].isdigit()
    assert base64.b64decode(org["caCertificate"]).startswith(b"-----BEGIN CERTIFICATE-----")
    assert org["apigeeProjectId"] == cloud.apigee.get(name=ORG).execute()["apigeeProjectId"]

    with pytest.raises(HttpError) as caught:
        cloud.org()
    assert caught.value.status_code == 409

    deleted = cloud.wait(cloud.apigee.delete(name=ORG, retention="MINIMUM").execute())
    assert deleted["metadata"]["operationType"] == "DELETE"
    with pytest.raises(HttpError) as caught:
        cloud.apigee.get(name=ORG).execute()
    assert caught.value.status_code == 404


@pytest.fixture
def slow() -> Iterator[Emulator]:
    """Instances take 0.3 s here: long enough to meet the organization's lock."""
    durations = {**FAST, "apigee.organizations.instances": 300.0}
    with Emulator(durations=durations) as emu:
        yield emu


def test_one_operation_per_organization_at_a_time(slow: Emulator) -> None:
    cloud = Cloud(slow.url)
    cloud.peered_network()
    cloud.org()
    started = (
        cloud.apigee.instances()
        .create(parent=ORG, body={"name": "eu1", "location": REGION})
        .execute()
    )
    uuid = started["name"].rsplit("/", 1)[-1]
    envgroup = {"name": "g", "hostnames": ["a.example"]}
    for attempt in (
        cloud.apigee.environments().create(parent=ORG, body={"name": "test"}),
        cloud.apigee.envgroups().create(parent=ORG, body=envgroup),
        cloud.apigee.delete(name=ORG),
    ):
        with pytest.raises(HttpError) as caught:
            attempt.execute()
        error = error_of(caught.value)
        assert (caught.value.status_code, error["status"]) == (400, "FAILED_PRECONDITION")
        assert error["message"] == (
            "the resource is locked by another operation where instance eu1 is currently being "
            f"created for organization {PROJECT} by operation: {uuid}"
        )
    cloud.wait(started)
    cloud.environment()  # free again

    # Every operation of the organization, from start to end: none overlapped another.
    spans = sorted(
        (op["start"], op["end"])
        for op in slow.dump()["operations"]
        if op["api"] == "apigee" and op["path"].startswith(f"{ORG}/operations/")
    )
    assert len(spans) == 3
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))


# --- instances ------------------------------------------------------------------------------


def test_instance_outputs_and_its_service_attachment(cloud: Cloud, org: dict) -> None:
    done = cloud.instance(ipRange="10.20.0.0/22,10.21.0.0/28")
    assert done["response"]["@type"].endswith(".Instance")
    instance = cloud.apigee.instances().get(name=f"{ORG}/instances/eu1").execute()
    assert instance["name"] == "eu1" and instance["location"] == REGION
    assert instance["host"] == "10.20.0.2" and instance["port"] == "443"
    assert instance["state"] == "ACTIVE"
    assert instance["peeringCidrRange"] == "SLASH_22"
    tenant = org["apigeeProjectId"]
    assert re.fullmatch(
        rf"projects/{tenant}/regions/{REGION}/serviceAttachments/apigee-{REGION}-[0-9a-f]{{4}}",
        instance["serviceAttachment"],
    )
    assert instance["consumerAcceptList"] == [PROJECT]
    listed = cloud.apigee.instances().list(parent=ORG).execute()
    assert [i["name"] for i in listed["instances"]] == ["eu1"]

    # The service attachment exists in the tenant project, accepting the org's project.
    name = instance["serviceAttachment"].rsplit("/", 1)[-1]
    attachment = cloud.compute.service_attachments.get(
        project=tenant, region=REGION, service_attachment=name
    )
    assert [a.project_id_or_num for a in attachment.consumer_accept_lists] == [PROJECT]
    # A PSC network endpoint group can point at it.
    neg = compute_v1.NetworkEndpointGroup(
        name="apigee-neg",
        network_endpoint_type="PRIVATE_SERVICE_CONNECT",
        psc_target_service=instance["serviceAttachment"],
        network="global/networks/net",
    )
    cloud.compute.wait(
        cloud.compute.region_network_endpoint_groups.insert(
            project=PROJECT, region=REGION, network_endpoint_group_resource=neg
        )
    )


def test_one_instance_per_region_and_ranges_from_the_connection(cloud: Cloud, org: dict) -> None:
    with pytest.raises(HttpError) as caught:
        cloud.instance(ipRange="192.168.0.0/22")
    assert "not within the ranges reserved" in error_of(caught.value)["message"]
    cloud.instance()
    with pytest.raises(HttpError) as caught:
        cloud.instance("eu2")
    assert caught.value.status_code == 400
    assert "only one instance per location" in error_of(caught.value)["message"]


def tenant_attachment(cloud: Cloud, instance: dict[str, Any]) -> compute_v1.ServiceAttachment:
    _, tenant, _, region, _, name = instance["serviceAttachment"].split("/")
    return cloud.compute.service_attachments.get(
        project=tenant, region=region, service_attachment=name
    )


def test_instance_accept_list_follows_patches(cloud: Cloud, org: dict) -> None:
    instance = cloud.instance()["response"]
    patch = cloud.apigee.instances().patch(
        name=f"{ORG}/instances/eu1",
        updateMask="consumer_accept_list",
        body={"consumerAcceptList": [PROJECT, "consumer-two"]},
    )
    cloud.wait(patch.execute())
    accepted = tenant_attachment(cloud, instance).consumer_accept_lists
    assert [a.project_id_or_num for a in accepted] == [PROJECT, "consumer-two"]
    got = cloud.apigee.instances().get(name=f"{ORG}/instances/eu1").execute()
    assert got["consumerAcceptList"] == [PROJECT, "consumer-two"]


def test_instance_delete_takes_its_service_attachment(cloud: Cloud, org: dict) -> None:
    instance = cloud.instance()["response"]
    done = cloud.wait(cloud.apigee.instances().delete(name=f"{ORG}/instances/eu1").execute())
    assert done["metadata"]["operationType"] == "DELETE"
    with pytest.raises(HttpError) as caught:
        cloud.apigee.instances().get(name=f"{ORG}/instances/eu1").execute()
    assert caught.value.status_code == 404
    with pytest.raises(exceptions.NotFound):
        tenant_attachment(cloud, instance)


# --- environments, groups and attachments ---------------------------------------------------


def test_an_evaluation_organization_has_one_instance(cloud: Cloud) -> None:
    """C54: only paid organizations expand to more regions."""
    cloud.peered_network()
    cloud.org(billingType="EVALUATION")
    cloud.instance()
    with pytest.raises(HttpError) as caught:
        cloud.instance("eu2", "europe-west4")
    assert caught.value.status_code == 400
    assert "evaluation organizations have one instance" in error_of(caught.value)["message"]


def test_an_organization_without_peering_takes_no_ip_range(cloud: Cloud) -> None:
    """C58; without ipRange its instance is created, with no peering range."""
    cloud.org(authorizedNetwork=None, disableVpcPeering=True)
    with pytest.raises(HttpError) as caught:
        cloud.instance(ipRange="10.0.0.0/22")
    assert caught.value.status_code == 400
    assert "has no VPC peering" in error_of(caught.value)["message"]
    instance = cloud.instance()["response"]
    assert "peeringCidrRange" not in instance and instance["serviceAttachment"]


def test_a_hostname_belongs_to_one_environment_group(cloud: Cloud, org: dict) -> None:
    """C57, on create and on patch; a group may keep its own hostnames when patched."""
    groups = cloud.apigee.envgroups()
    cloud.wait(groups.create(parent=ORG, body={"name": "g", "hostnames": ["a.example"]}).execute())
    cloud.wait(groups.create(parent=ORG, body={"name": "h", "hostnames": ["b.example"]}).execute())
    with pytest.raises(HttpError) as caught:
        groups.create(parent=ORG, body={"name": "i", "hostnames": ["a.example"]}).execute()
    assert caught.value.status_code == 400
    assert "already used by environment group g" in error_of(caught.value)["message"]
    with pytest.raises(HttpError) as caught:
        groups.patch(name=f"{ORG}/envgroups/h", updateMask="hostnames",
                     body={"hostnames": ["b.example", "a.example"]}).execute()
    assert "already used by environment group g" in error_of(caught.value)["message"]
    cloud.wait(groups.patch(name=f"{ORG}/envgroups/g", updateMask="hostnames",
                            body={"hostnames": ["a.example", "c.example"]}).execute())


def test_environments_groups_and_attachments(cloud: Cloud, org: dict) -> None:
    cloud.instance()
    env = cloud.environment()["response"]
    assert (env["name"], env["state"]) == ("test", "ACTIVE")
    assert cloud.apigee.get(name=ORG).execute()["environments"] == ["test"]

    groups = cloud.apigee.envgroups()
    cloud.wait(groups.create(parent=ORG, body={"name": "g", "hostnames": ["a.example"]}).execute())
    cloud.wait(
        groups.patch(
            name=f"{ORG}/envgroups/g", updateMask="hostnames", body={"hostnames": ["b.example"]}
        ).execute()
    )
    assert groups.get(name=f"{ORG}/envgroups/g").execute()["hostnames"] == ["b.example"]

    attachments = groups.attachments()
    with pytest.raises(HttpError) as caught:
        attachments.create(parent=f"{ORG}/envgroups/g", body={"environment": "prod"}).execute()
    assert caught.value.status_code == 404
    done = cloud.wait(
        attachments.create(parent=f"{ORG}/envgroups/g", body={"environment": "test"}).execute()
    )
    attached = done["response"]
    assert attached["environment"] == "test" and attached["environmentGroupId"] == "g"
    assert re.fullmatch(r"[0-9a-f-]{36}", attached["name"])
    listed = attachments.list(parent=f"{ORG}/envgroups/g").execute()
    assert [a["environment"] for a in listed["environmentGroupAttachments"]] == ["test"]

    runtime = cloud.apigee.instances().attachments()
    with pytest.raises(HttpError) as caught:
        runtime.create(parent=f"{ORG}/instances/eu1", body={"environment": "prod"}).execute()
    assert caught.value.status_code == 404
    cloud.wait(
        runtime.create(parent=f"{ORG}/instances/eu1", body={"environment": "test"}).execute()
    )
    listed = runtime.list(parent=f"{ORG}/instances/eu1").execute()
    assert [a["environment"] for a in listed["attachments"]] == ["test"]

    with pytest.raises(HttpError) as caught:  # still attached
        cloud.apigee.environments().delete(name=f"{ORG}/environments/test").execute()
    assert caught.value.status_code == 400


# --- endpoint attachments -------------------------------------------------------------------


def test_endpoint_attachment_connection_state_follows_the_accept_lists(
    cloud: Cloud, org: dict
) -> None:
    cloud.instance()
    target = cloud.producer_attachment()
    attachments = cloud.apigee.endpointAttachments()
    with pytest.raises(HttpError) as caught:
        attachments.create(
            parent=ORG,
            endpointAttachmentId="backend",
            body={"location": "europe-west1", "serviceAttachment": target},
        ).execute()
    assert "must be the region of the service attachment" in error_of(caught.value)["message"]

    done = cloud.wait(
        attachments.create(
            parent=ORG,
            endpointAttachmentId="backend",
            body={"location": REGION, "serviceAttachment": target},
        ).execute()
    )
    name = f"{ORG}/endpointAttachments/backend"
    attachment = attachments.get(name=name).execute()
    assert done["response"]["name"] == attachment["name"] == name
    assert attachment["state"] == "ACTIVE"
    assert attachment["host"].startswith("10.20.") and attachment["host"] != "10.20.0.2"
    assert attachment["connectionState"] == "PENDING"  # the tenant project is not accepted

    def set_lists(**fields: Any) -> None:
        sa = cloud.compute.service_attachments.get(
            project=PRODUCER, region=REGION, service_attachment="backend-sa"
        )
        cloud.compute.wait(
            cloud.compute.service_attachments.patch(
                project=PRODUCER,
                region=REGION,
                service_attachment="backend-sa",
                service_attachment_resource={"fingerprint": sa.fingerprint, **fields},
            ),
            PRODUCER,
        )

    tenant = org["apigeeProjectId"]
    set_lists(consumer_accept_lists=[{"project_id_or_num": tenant, "connection_limit": 10}])
    assert attachments.get(name=name).execute()["connectionState"] == "ACCEPTED"
    set_lists(consumer_accept_lists=[], consumer_reject_lists=[cloud.number(tenant)])
    assert attachments.get(name=name).execute()["connectionState"] == "REJECTED"
    set_lists(connection_preference="ACCEPT_AUTOMATIC", consumer_reject_lists=[])
    assert attachments.get(name=name).execute()["connectionState"] == "ACCEPTED"

    with pytest.raises(HttpError) as caught:  # one per service attachment per organization
        attachments.create(
            parent=ORG,
            endpointAttachmentId="again",
            body={"location": REGION, "serviceAttachment": target},
        ).execute()
    assert caught.value.status_code == 409
    cloud.wait(attachments.delete(name=name).execute())
    with pytest.raises(HttpError) as caught:
        attachments.get(name=name).execute()
    assert caught.value.status_code == 404


# --- DNS zones ------------------------------------------------------------------------------


def test_dns_zone_peering_must_resolve(cloud: Cloud, org: dict) -> None:
    zones = cloud.apigee.dnsZones()
    body = {
        "domain": "corp.example.",
        "description": "backends",
        "peeringConfig": {"targetProjectId": PRODUCER, "targetNetworkId": "backend"},
    }
    with pytest.raises(HttpError) as caught:
        zones.create(parent=ORG, dnsZoneId="corp", body=body).execute()
    assert caught.value.status_code == 400
    cloud.network("backend", PRODUCER)
    done = cloud.wait(zones.create(parent=ORG, dnsZoneId="corp", body=body).execute())
    assert done["response"]["name"] == f"{ORG}/dnsZones/corp"
    zone = zones.get(name=f"{ORG}/dnsZones/corp").execute()
    assert (zone["domain"], zone["state"]) == ("corp.example.", "ACTIVE")


# --- API proxies and deployments ------------------------------------------------------------


def import_bundle(cloud: Cloud, data: bytes) -> dict[str, Any]:
    # google-api-python-client sends a google.api.HttpBody as JSON, its data base64.
    body = {"contentType": "application/octet-stream", "data": base64.b64encode(data).decode()}
    return (
        cloud.apigee.apis().create(parent=ORG, name="hello", action="import", body=body).execute()
    )


def test_bundles_are_imported_as_revisions(cloud: Cloud, org: dict) -> None:
    first = import_bundle(cloud, bundle())
    assert first["revision"] == "1" and first["name"] == "hello"
    assert first["basepaths"] == ["/hello"] and first["targets"] == ["default"]
    # The same method, its body sent as the raw zip (application/octet-stream) instead.
    request = cloud.apigee.apis().create(parent=ORG, name="hello", action="import", body={})
    request.body = bundle(auth=False)
    request.headers |= {
        "content-type": "application/octet-stream",
        "content-length": str(len(request.body)),
    }
    assert request.execute()["revision"] == "2"

    proxy = cloud.apigee.apis().get(name=f"{ORG}/apis/hello").execute()
    assert proxy["revision"] == ["1", "2"] and proxy["latestRevisionId"] == "2"
    read = (
        cloud.apigee.apis().revisions().get(name=f"{ORG}/apis/hello/revisions/1", format="bundle")
    )
    read.postproc = lambda response, content: content  # the answer is the zip, not JSON
    assert read.execute() == bundle()

    with pytest.raises(HttpError) as caught:
        import_bundle(cloud, b"not a zip")
    assert caught.value.status_code == 400


def test_deploy_needs_an_existing_service_account_for_google_auth(cloud: Cloud, org: dict) -> None:
    cloud.environment()
    import_bundle(cloud, bundle())
    revision = f"{ORG}/environments/test/apis/hello/revisions/1"
    deploy = cloud.apigee.environments().apis().revisions().deploy
    with pytest.raises(HttpError) as caught:
        deploy(name=revision, override=True).execute()
    assert caught.value.status_code == 400
    assert error_of(caught.value)["message"] == (
        f'deployment validations failed; MISSING_SERVICE_ACCOUNT: Deployment of "{revision}" '
        "requires a service account identity, but one was not provided with the request."
    )
    email = f"invoker@{PROJECT}.iam.gserviceaccount.com"
    with pytest.raises(HttpError) as caught:
        deploy(name=revision, serviceAccount=email).execute()
    assert "does not exist" in error_of(caught.value)["message"]

    cloud.api("iam", "v1").projects().serviceAccounts().create(
        name=f"projects/{PROJECT}", body={"accountId": "invoker"}
    ).execute()
    deployed = deploy(name=revision, serviceAccount=email, override=True).execute()
    assert deployed["state"] == "PROGRESSING" and deployed["serviceAccount"] == email
    revisions = cloud.apigee.environments().apis().revisions()
    while deployed["state"] != "READY":
        cloud.skip()
        deployed = revisions.getDeployments(name=revision).execute()
    assert (deployed["apiProxy"], deployed["revision"], deployed["environment"]) == (
        "hello",
        "1",
        "test",
    )


def test_deployment_lists_undeploy_and_delete(cloud: Cloud, org: dict) -> None:
    cloud.environment()
    import_bundle(cloud, bundle(auth=False))
    revision = f"{ORG}/environments/test/apis/hello/revisions/1"
    revisions = cloud.apigee.environments().apis().revisions()
    revisions.deploy(name=revision).execute()
    listings = (
        cloud.apigee.deployments().list(parent=ORG),
        cloud.apigee.environments().deployments().list(parent=f"{ORG}/environments/test"),
        cloud.apigee.apis().deployments().list(parent=f"{ORG}/apis/hello"),
        cloud.apigee.apis().revisions().deployments().list(parent=f"{ORG}/apis/hello/revisions/1"),
        cloud.apigee.environments()
        .apis()
        .deployments()
        .list(parent=f"{ORG}/environments/test/apis/hello"),
    )
    for listing in listings:
        assert [d["revision"] for d in listing.execute()["deployments"]] == ["1"]

    with pytest.raises(HttpError) as caught:  # deployed: cannot go
        cloud.apigee.apis().delete(name=f"{ORG}/apis/hello").execute()
    assert caught.value.status_code == 400
    revisions.undeploy(name=revision).execute()
    assert cloud.apigee.deployments().list(parent=ORG).execute() == {}
    cloud.apigee.apis().delete(name=f"{ORG}/apis/hello").execute()
    with pytest.raises(HttpError) as caught:
        cloud.apigee.apis().get(name=f"{ORG}/apis/hello").execute()
    assert caught.value.status_code == 404


# --- Service Networking's producer ----------------------------------------------------------


def delete_connection(cloud: Cloud) -> dict[str, Any]:
    sn = cloud.api("servicenetworking", "v1").services().connections()
    body = {"consumerNetwork": f"projects/{cloud.number()}/global/networks/net"}
    started = sn.deleteConnection(
        name=f"{PSA}/connections/servicenetworking-googleapis-com", body=body
    ).execute()
    return cloud.wait(started, "servicenetworking")


IN_USE = (
    "Failed to delete connection; Producer services (e.g. CloudSQL, Cloud Memstore, etc.) are "
    "still using this connection."
)


def test_the_connection_stays_while_an_organization_uses_it(cloud: Cloud, org: dict) -> None:
    done = delete_connection(cloud)
    assert done["error"] == {"code": 9, "message": IN_USE}  # the operation fails, as Google's
    cloud.wait(cloud.apigee.delete(name=ORG).execute())
    # Google keeps counting the organization for a while after it is gone.
    assert delete_connection(cloud)["error"]["message"] == IN_USE
    assert cloud.compute.networks.get(project=PROJECT, network="net").peerings


def test_the_connection_can_go_once_the_organization_is_released() -> None:
    with Emulator(durations={**FAST, "servicenetworking.producerRelease": 0}
    ) as emu:
        cloud = Cloud(emu.url)
        cloud.peered_network()
        cloud.org()
        cloud.wait(cloud.apigee.delete(name=ORG).execute())
        assert "error" not in delete_connection(cloud)
        assert not cloud.compute.networks.get(project=PROJECT, network="net").peerings


def test_an_instance_range_of_a_28_alone_is_accepted_and_odd_sizes_are_not(
    cloud: Cloud, org: dict
) -> None:
    """Instance.ipRange: "/22 or /28 or both (or neither)" (docs/emulator-fidelity.md C53)."""
    with pytest.raises(HttpError) as caught:
        cloud.instance(ipRange="10.20.0.0/24")
    assert "Invalid ipRange" in error_of(caught.value)["message"]
    done = cloud.instance(ipRange="10.21.0.0/28")
    assert "error" not in done


def test_an_endpoint_attachment_id_follows_google_s_pattern(cloud: Cloud, org: dict) -> None:
    """endpointAttachmentId: a lowercase letter, then up to 31 lowercase letters, digits or
    hyphens, not ending with one (C55)."""
    cloud.instance()
    target = cloud.producer_attachment()
    for wanted in ("Backend", "b", "backend-", "9backend"):
        with pytest.raises(HttpError) as caught:
            cloud.apigee.endpointAttachments().create(
                parent=ORG, endpointAttachmentId=wanted,
                body={"location": REGION, "serviceAttachment": target},
            ).execute()
        assert "Invalid endpointAttachmentId" in error_of(caught.value)["message"], wanted


def _multipart(parts: dict[str, bytes]) -> dict[str, str]:
    boundary = "provision-test-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\""
        f"\r\nContent-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        for name, data in parts.items()) + f"--{boundary}--\r\n".encode()
    return {"contentType": f"multipart/form-data; boundary={boundary}",
            "data": base64.b64encode(body).decode()}


def test_a_truststore_holds_a_certificate_and_a_reference_names_it(cloud: Cloud, org: dict) -> None:
    """Keystores, aliases uploaded as keycertfile (certFile only: a truststore), their
    certificates' details and PEM, and references to the keystore."""
    cloud.instance()
    cloud.environment()
    env = f"{ORG}/environments/test"
    stores = cloud.apigee.environments().keystores()
    stores.create(parent=env, body={"name": "backends-trust"}).execute()
    pem = (Path(__file__).parents[2] / "plans/demo-tls/api.internal.example.com.crt").read_bytes()
    alias = stores.aliases().create(parent=f"{env}/keystores/backends-trust", alias="root",
                                    format="keycertfile",
                                    body=_multipart({"certFile": pem})).execute()
    assert alias["type"] == "cert"
    [info] = alias["certsInfo"]["certInfo"]
    assert info["subject"] == "CN=api.internal.example.com"
    assert stores.get(name=f"{env}/keystores/backends-trust").execute()["aliases"] == ["root"]
    got = stores.aliases().getCertificate(
        name=f"{env}/keystores/backends-trust/aliases/root").execute()
    assert (got.encode() if isinstance(got, str) else got) == pem
    refs = cloud.apigee.environments().references()
    refs.create(parent=env, body={"name": "backends-trust", "refers": "backends-trust",
                                  "resourceType": "KeyStore"}).execute()
    with pytest.raises(HttpError) as caught:
        refs.create(parent=env, body={"name": "nowhere", "refers": "missing",
                                      "resourceType": "KeyStore"}).execute()
    assert caught.value.status_code == 400
    with pytest.raises(HttpError) as caught:
        stores.aliases().create(parent=f"{env}/keystores/backends-trust", alias="bad",
                                format="keycertfile",
                                body=_multipart({"certFile": b"not a certificate"})).execute()
    assert caught.value.status_code == 400
