"""Cloud Run v2 through google-cloud-run's REST transport (enums travel as numbers)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.api_core.future import polling
from google.cloud import compute_v1, run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import field_mask_pb2

from .conftest import PROJECT, REGION, Compute

PARENT = f"projects/{PROJECT}/locations/{REGION}"
NAME = f"{PARENT}/services/hello"
FAST = polling.DEFAULT_POLLING.with_delay(initial=0.01, maximum=0.05)  # time runs 1000x


def service(**fields) -> run_v2.Service:
    template = run_v2.RevisionTemplate(containers=[run_v2.Container(image="gcr.io/p/hello")])
    return run_v2.Service(template=template, **fields)


def create(client: run_v2.ServicesClient, service_id: str = "hello", **fields) -> run_v2.Service:
    op = client.create_service(parent=PARENT, service_id=service_id, service=service(**fields))
    return op.result(polling=FAST)


def test_create_service_result_is_the_ready_service(run_services: run_v2.ServicesClient) -> None:
    op = run_services.create_service(
        parent=PARENT,
        service_id="hello",
        service=service(ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY),
    )
    assert op.operation.name.startswith(f"{PARENT}/operations/")
    created = op.result()  # the client's own polling, untouched
    assert created.name == NAME
    assert created.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    assert created.uri.startswith("https://hello-") and created.uri.endswith("-uc.a.run.app")
    assert created.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert created.latest_ready_revision.startswith(f"{NAME}/revisions/hello-00001-")
    assert created.generation == 1 and created.uid and created.etag
    assert op.metadata.name == NAME  # Run reports the Service as the operation's metadata
    assert run_services.get_service(name=NAME).uri == created.uri


def test_enums_are_stored_by_name(run_services: run_v2.ServicesClient, emulator) -> None:
    create(run_services, ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER)
    stored = emulator.dump()["resources"]["run"][NAME]["body"]
    assert stored["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"


def test_get_list_update_delete(run_services: run_v2.ServicesClient) -> None:
    first = create(run_services)
    create(run_services, "other")
    listed = run_services.list_services(parent=PARENT)
    assert sorted(s.name.rsplit("/", 1)[-1] for s in listed) == ["hello", "other"]

    changed = run_services.get_service(name=NAME)
    changed.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    updated = run_services.update_service(service=changed).result(polling=FAST)
    assert updated.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    assert updated.generation == 2
    assert updated.latest_ready_revision != first.latest_ready_revision
    assert updated.uri == first.uri

    deleted = run_services.delete_service(name=NAME).result(polling=FAST)
    assert deleted.name == NAME
    with pytest.raises(exceptions.NotFound):
        run_services.get_service(name=NAME)


def test_update_mask_changes_only_the_fields_named(run_services: run_v2.ServicesClient) -> None:
    create(run_services, labels={"team": "a"})
    request = run_services.get_service(name=NAME)
    request.labels["team"] = "b"
    request.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_NONE  # not in the mask: ignored
    updated = run_services.update_service(
        service=request, update_mask=field_mask_pb2.FieldMask(paths=["labels"])
    ).result(polling=FAST)
    assert updated.labels == {"team": "b"}
    assert updated.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL


def test_update_with_a_stale_etag_is_aborted(run_services: run_v2.ServicesClient) -> None:
    stale = create(run_services)
    fresh = run_services.get_service(name=NAME)
    fresh.labels["a"] = "b"
    run_services.update_service(service=fresh).result(polling=FAST)
    stale.labels["c"] = "d"
    with pytest.raises(exceptions.Conflict, match="etag"):  # HTTP 409 ABORTED
        run_services.update_service(service=stale)


def test_missing_and_duplicate_services(run_services: run_v2.ServicesClient) -> None:
    with pytest.raises(exceptions.NotFound) as caught:
        run_services.get_service(name=NAME)
    assert (
        "Resource 'hello' of kind 'SERVICE' in region 'us-central1' in project 'proj-one' "
        "does not exist." in str(caught.value)
    )
    create(run_services)
    with pytest.raises(exceptions.Conflict, match="already exists"):
        run_services.create_service(parent=PARENT, service_id="hello", service=service())


def test_a_missing_required_parameter_is_400(run_services: run_v2.ServicesClient) -> None:
    with pytest.raises(exceptions.BadRequest, match="serviceId"):
        run_services.create_service(parent=PARENT, service=service())


def test_a_service_needs_a_container(run_services: run_v2.ServicesClient) -> None:
    with pytest.raises(exceptions.BadRequest, match="containers"):
        run_services.create_service(parent=PARENT, service_id="x", service=run_v2.Service())


def test_reference_to_a_missing_network_fails(
    run_services: run_v2.ServicesClient, compute: Compute
) -> None:
    network = f"projects/{PROJECT}/global/networks/vpc"
    template = run_v2.RevisionTemplate(
        containers=[run_v2.Container(image="gcr.io/p/hello")],
        vpc_access=run_v2.VpcAccess(
            network_interfaces=[run_v2.VpcAccess.NetworkInterface(network=network)]
        ),
    )
    with pytest.raises(exceptions.NotFound, match=network):
        run_services.create_service(
            parent=PARENT, service_id="x", service=run_v2.Service(template=template)
        )
    compute.wait(
        compute.networks.insert(project=PROJECT, network_resource=compute_v1.Network(name="vpc"))
    )
    run_services.create_service(
        parent=PARENT, service_id="x", service=run_v2.Service(template=template)
    ).result(polling=FAST)


def test_wait_operation_long_polls(run_services: run_v2.ServicesClient) -> None:
    op = run_services.create_service(parent=PARENT, service_id="hello", service=service())
    done = run_services.wait_operation(
        request=operations_pb2.WaitOperationRequest(name=op.operation.name)
    )
    assert done.done
    got = run_services.get_operation(
        request=operations_pb2.GetOperationRequest(name=op.operation.name)
    )
    assert got.done and got.response.type_url.endswith("google.cloud.run.v2.Service")


def test_iam_policy_read_modify_write_with_etag(run_services: run_v2.ServicesClient) -> None:
    create(run_services)
    initial = run_services.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=NAME))
    binding = policy_pb2.Binding(
        role="roles/run.invoker", members=[f"serviceAccount:inv@{PROJECT}.iam.gserviceaccount.com"]
    )
    initial.bindings.append(binding)
    applied = run_services.set_iam_policy(
        request=iam_policy_pb2.SetIamPolicyRequest(resource=NAME, policy=initial)
    )
    assert applied.etag != initial.etag
    with pytest.raises(exceptions.Conflict, match="concurrent policy changes") as caught:
        run_services.set_iam_policy(
            request=iam_policy_pb2.SetIamPolicyRequest(resource=NAME, policy=initial)
        )
    assert caught.value.response.json()["error"]["status"] == "ABORTED"
    read = run_services.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=NAME))
    assert [b.role for b in read.bindings] == ["roles/run.invoker"]
    assert read.etag == applied.etag
