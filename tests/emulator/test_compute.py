"""Compute Engine through google-cloud-compute (and google-api-python-client where a test must
send JSON the typed client cannot express, such as a misspelled field)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

from .conftest import PROJECT, REGION, Compute

DONE = compute_v1.Operation.Status.DONE


def make_network(compute: Compute, name: str = "net") -> compute_v1.Network:
    op = compute.networks.insert(
        project=PROJECT,
        network_resource=compute_v1.Network(name=name, auto_create_subnetworks=False),
    )
    compute.wait(op)
    return compute.networks.get(project=PROJECT, network=name)


def make_subnet(compute: Compute, name: str, cidr: str, network: str = "net", **fields) -> None:
    op = compute.subnetworks.insert(
        project=PROJECT,
        region=REGION,
        subnetwork_resource=compute_v1.Subnetwork(
            name=name, ip_cidr_range=cidr, network=f"global/networks/{network}", **fields
        ),
    )
    compute.wait(op)


def error_body(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


# --- operations and lifecycle ----------------------------------------------------------------


@pytest.fixture(scope="module")
def slow() -> Iterator[Compute]:
    """An emulator of its own, whose operations are seen in flight: its clock moves only while
    a long poll waits."""
    with Emulator() as emu:
        yield Compute(emu.url)


def test_network_appears_when_its_insert_operation_is_done(slow: Compute) -> None:
    op = slow.networks.insert(
        project=PROJECT, network_resource=compute_v1.Network(name="later", mtu=1500)
    )
    assert op.status in (compute_v1.Operation.Status.PENDING, compute_v1.Operation.Status.RUNNING)
    with pytest.raises(exceptions.NotFound):
        slow.networks.get(project=PROJECT, network="later")
    with pytest.raises(exceptions.Conflict):  # a duplicate, even while the first is running
        slow.networks.insert(project=PROJECT, network_resource=compute_v1.Network(name="later"))

    done = slow.wait(op)
    network = slow.networks.get(project=PROJECT, network="later")
    assert done.status == DONE
    assert done.progress == 100
    assert done.operation_type == "insert"
    assert done.target_link == network.self_link
    assert done.target_id == network.id
    assert done.end_time and done.start_time and done.insert_time
    assert network.self_link == (
        "https://www.googleapis.com/compute/v1/projects/proj-one/global/networks/later"
    )
    assert network.kind == "compute#network"
    assert network.mtu == 1500
    assert network.creation_timestamp


def test_delete_takes_effect_when_done(slow: Compute) -> None:
    slow.wait(slow.networks.insert(project=PROJECT, network_resource={"name": "gone"}))
    op = slow.networks.delete(project=PROJECT, network="gone")
    assert slow.networks.get(project=PROJECT, network="gone").name == "gone"
    slow.wait(op)
    with pytest.raises(exceptions.NotFound):
        slow.networks.get(project=PROJECT, network="gone")


def test_operation_get_reports_the_same_operation(compute: Compute) -> None:
    op = compute.networks.insert(project=PROJECT, network_resource={"name": "net"})
    compute.wait(op)
    got = compute.global_operations.get(project=PROJECT, operation=op.name)
    assert got.status == DONE
    assert got.name == op.name
    assert got.self_link.endswith(f"/projects/{PROJECT}/global/operations/{op.name}")
    regional = compute.subnetworks.insert(
        project=PROJECT,
        region=REGION,
        subnetwork_resource={
            "name": "s",
            "ip_cidr_range": "10.0.0.0/24",
            "network": "global/networks/net",
        },
    )
    assert regional.region.endswith(f"/regions/{REGION}")
    assert compute.wait(regional).status == DONE


# --- request validation ----------------------------------------------------------------------


def test_misspelled_field_is_rejected_naming_it(compute: Compute, google_api) -> None:
    make_network(compute)
    api = google_api("compute", "v1")
    body = {"name": "s", "network": "global/networks/net", "ipCidrRnage": "10.0.0.0/24"}
    with pytest.raises(HttpError) as caught:
        api.subnetworks().insert(project=PROJECT, region=REGION, body=body).execute()
    assert caught.value.status_code == 400
    error = error_body(caught.value)
    assert error["message"] == (
        "Invalid JSON payload received. Unknown name \"ipCidrRnage\" at 'subnetwork_resource': "
        "Cannot find field."
    )
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["errors"][0]["reason"] == "invalid"


def test_wrong_type_and_bad_enum_are_rejected(compute: Compute, google_api) -> None:
    api = google_api("compute", "v1")
    with pytest.raises(HttpError) as caught:
        api.networks().insert(project=PROJECT, body={"name": "n", "mtu": "big"}).execute()
    assert "network_resource.mtu" in error_body(caught.value)["message"]
    body = {
        "name": "s",
        "network": "global/networks/net",
        "ipCidrRange": "10.0.0.0/24",
        "purpose": "NOT_A_PURPOSE",
    }
    with pytest.raises(HttpError) as caught:
        api.subnetworks().insert(project=PROJECT, region=REGION, body=body).execute()
    assert caught.value.status_code == 400
    assert "subnetwork_resource.purpose" in error_body(caught.value)["message"]


def test_output_only_fields_in_a_request_are_ignored(compute: Compute, google_api) -> None:
    make_network(compute)
    api = google_api("compute", "v1")
    echoed = api.networks().get(project=PROJECT, network="net").execute()  # read-modify-write
    echoed["description"] = "changed"
    op = api.networks().patch(project=PROJECT, network="net", body=echoed).execute()
    assert op["kind"] == "compute#operation"
    compute.global_operations.wait(project=PROJECT, operation=op["name"])
    assert compute.networks.get(project=PROJECT, network="net").description == "changed"


def test_bad_resource_name_is_rejected(compute: Compute) -> None:
    with pytest.raises(exceptions.BadRequest, match="resource.name"):
        compute.networks.insert(project=PROJECT, network_resource={"name": "Not_Valid"})


# --- not found, conflicts, references --------------------------------------------------------


def test_missing_resources_answer_404_with_googles_message(compute: Compute) -> None:
    with pytest.raises(exceptions.NotFound) as caught:
        compute.networks.get(project=PROJECT, network="nope")
    assert "The resource 'projects/proj-one/global/networks/nope' was not found" in str(
        caught.value
    )
    assert caught.value.errors[0]["reason"] == "notFound"
    with pytest.raises(exceptions.NotFound):
        compute.networks.delete(project=PROJECT, network="nope")


def test_duplicate_insert_is_409_already_exists(compute: Compute) -> None:
    make_network(compute)
    with pytest.raises(exceptions.Conflict) as caught:
        compute.networks.insert(project=PROJECT, network_resource={"name": "net"})
    assert caught.value.errors[0]["reason"] == "alreadyExists"


def test_repeated_request_id_returns_the_same_operation(compute: Compute, emulator) -> None:
    request_id = str(uuid.uuid4())
    request = {"project": PROJECT, "network_resource": {"name": "net"}, "request_id": request_id}
    first = compute.networks.insert(request=request)
    compute.wait(first)
    again = compute.networks.insert(request=request)
    assert again.name == first.name
    assert again.status == DONE
    assert emulator.request_counts()["compute.networks.insert"] == 2
    assert len(list(compute.networks.list(project=PROJECT))) == 1


def test_reference_to_a_missing_resource_fails_like_google(compute: Compute) -> None:
    with pytest.raises(exceptions.NotFound) as caught:
        compute.subnetworks.insert(
            project=PROJECT,
            region=REGION,
            subnetwork_resource={
                "name": "s",
                "ip_cidr_range": "10.0.0.0/24",
                "network": f"https://compute.googleapis.com/compute/v1/projects/{PROJECT}/global/networks/missing",
            },
        )
    assert "The resource 'projects/proj-one/global/networks/missing' was not found" in str(
        caught.value
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"description": "b/not-a-bucket"},
        {"fingerprint": "b/mzd+E0Lxk="},
    ],
    ids=["free-text", "fingerprint"],
)
def test_strings_that_only_look_like_paths_are_not_references(
    compute: Compute, fields: dict
) -> None:
    # `b/{bucket}` is a Cloud Storage path, but neither free text nor a base64 fingerprint
    # names a resource: Google accepts them as they are.
    make_network(compute)
    make_subnet(compute, "s", "10.0.0.0/24", **fields)
    subnet = compute.subnetworks.get(project=PROJECT, region=REGION, subnetwork="s")
    if "description" in fields:
        assert subnet.description == fields["description"]


def test_references_are_stored_as_full_urls(compute: Compute) -> None:
    make_network(compute)
    make_subnet(compute, "s", "10.0.0.0/24")
    subnet = compute.subnetworks.get(project=PROJECT, region=REGION, subnetwork="s")
    assert subnet.network == (
        "https://www.googleapis.com/compute/v1/projects/proj-one/global/networks/net"
    )
    assert subnet.region.endswith("/projects/proj-one/regions/us-central1")
    assert subnet.gateway_address == "10.0.0.1"
    network = compute.networks.get(project=PROJECT, network="net")
    assert network.subnetworks == [subnet.self_link]


def test_deleting_a_referenced_resource_is_resource_in_use(compute: Compute) -> None:
    make_network(compute)
    make_subnet(compute, "s", "10.0.0.0/24")
    with pytest.raises(exceptions.BadRequest) as caught:
        compute.networks.delete(project=PROJECT, network="net")
    assert caught.value.errors[0]["reason"] == "resourceInUseByAnotherResource"
    assert caught.value.errors[0]["message"] == (
        "The network resource 'projects/proj-one/global/networks/net' is already being used by "
        "'projects/proj-one/regions/us-central1/subnetworks/s'"
    )
    compute.wait(compute.subnetworks.delete(project=PROJECT, region=REGION, subnetwork="s"))
    compute.wait(compute.networks.delete(project=PROJECT, network="net"))


# --- patch, list -----------------------------------------------------------------------------


def test_patch_merges_and_checks_the_fingerprint(compute: Compute) -> None:
    make_network(compute)
    compute.wait(
        compute.networks.patch(
            project=PROJECT,
            network="net",
            network_resource={"routing_config": {"routing_mode": "GLOBAL"}},
        )
    )
    network = compute.networks.get(project=PROJECT, network="net")
    assert network.routing_config.routing_mode == "GLOBAL"
    assert network.mtu == 1460  # untouched by the merge

    make_subnet(compute, "s", "10.0.0.0/24")
    subnet = compute.subnetworks.get(project=PROJECT, region=REGION, subnetwork="s")
    with pytest.raises(exceptions.PreconditionFailed) as caught:
        compute.subnetworks.patch(
            project=PROJECT,
            region=REGION,
            subnetwork="s",
            subnetwork_resource={"description": "x", "fingerprint": "c3RhbGU="},
        )
    assert caught.value.errors[0]["reason"] == "conditionNotMet"
    compute.wait(
        compute.subnetworks.patch(
            project=PROJECT,
            region=REGION,
            subnetwork="s",
            subnetwork_resource={"description": "x", "fingerprint": subnet.fingerprint},
        )
    )
    patched = compute.subnetworks.get(project=PROJECT, region=REGION, subnetwork="s")
    assert patched.description == "x"
    assert patched.fingerprint != subnet.fingerprint
    assert patched.ip_cidr_range == "10.0.0.0/24"


def test_update_replaces_the_resource(compute: Compute) -> None:
    make_network(compute, "default")
    rule = {"name": "fw", "description": "ssh", "source_ranges": ["10.0.0.0/8"],
            "allowed": [{"I_p_protocol": "tcp", "ports": ["22"]}]}  # fmt: skip
    compute.wait(compute.firewalls.insert(project=PROJECT, firewall_resource=rule))
    replacement = {"name": "fw", "network": "global/networks/default",
                   "allowed": [{"I_p_protocol": "tcp", "ports": ["443"]}]}  # fmt: skip
    compute.wait(
        compute.firewalls.update(project=PROJECT, firewall="fw", firewall_resource=replacement)
    )
    updated = compute.firewalls.get(project=PROJECT, firewall="fw")
    assert updated.allowed[0].ports == ["443"]
    assert updated.description == "" and not updated.source_ranges
    assert updated.id and updated.creation_timestamp  # server fields survive a replace


def test_set_labels_checks_the_label_fingerprint(compute: Compute) -> None:
    compute.wait(compute.global_addresses.insert(project=PROJECT, address_resource={"name": "ip"}))
    address = compute.global_addresses.get(project=PROJECT, address="ip")
    labels = {"labels": {"env": "test"}, "label_fingerprint": "c3RhbGU="}
    with pytest.raises(exceptions.PreconditionFailed):
        compute.global_addresses.set_labels(
            project=PROJECT, resource="ip", global_set_labels_request_resource=labels
        )
    labels["label_fingerprint"] = address.label_fingerprint
    compute.wait(
        compute.global_addresses.set_labels(
            project=PROJECT, resource="ip", global_set_labels_request_resource=labels
        )
    )
    labelled = compute.global_addresses.get(project=PROJECT, address="ip")
    assert labelled.labels == {"env": "test"}
    assert labelled.label_fingerprint != address.label_fingerprint


def test_operations_are_listed(compute: Compute) -> None:
    make_network(compute)
    listed = list(compute.global_operations.list(project=PROJECT))
    assert [(o.operation_type, o.status) for o in listed] == [("insert", DONE)]


def test_list_pages_and_filters(compute: Compute) -> None:
    for name in ("a-net", "b-net", "c-net"):
        make_network(compute, name)
    pager = compute.networks.list(request={"project": PROJECT, "max_results": 2})
    assert [n.name for n in pager] == ["a-net", "b-net", "c-net"]
    first_page = next(
        iter(compute.networks.list(request={"project": PROJECT, "max_results": 2}).pages)
    )
    assert len(first_page.items) == 2 and first_page.next_page_token
    assert first_page.kind == "compute#networkList"
    found = compute.networks.list(request={"project": PROJECT, "filter": 'name = "b-net"'})
    assert [n.name for n in found] == ["b-net"]


def test_aggregated_list_groups_by_region(compute: Compute) -> None:
    make_network(compute)
    make_subnet(compute, "s1", "10.0.0.0/24")
    compute.wait(
        compute.subnetworks.insert(
            project=PROJECT,
            region="europe-west1",
            subnetwork_resource={
                "name": "s2",
                "ip_cidr_range": "10.1.0.0/24",
                "network": "global/networks/net",
            },
        )
    )
    scopes = {
        scope: [s.name for s in listed.subnetworks]
        for scope, listed in compute.subnetworks.aggregated_list(project=PROJECT)
    }
    assert scopes == {"regions/europe-west1": ["s2"], "regions/us-central1": ["s1"]}


# --- networking rules ------------------------------------------------------------------------


def test_subnet_ranges_may_not_overlap_in_a_network(compute: Compute) -> None:
    make_network(compute)
    make_subnet(compute, "s", "10.0.0.0/24")
    with pytest.raises(exceptions.BadRequest) as caught:
        make_subnet(compute, "t", "10.0.0.128/25")
    assert caught.value.errors[0]["message"] == (
        "Invalid value for field 'resource.ipCidrRange': '10.0.0.128/25'. Invalid IPCidrRange: "
        "10.0.0.128/25 conflicts with existing subnetwork 's' in region 'us-central1'."
    )
    make_network(compute, "other")
    make_subnet(compute, "t", "10.0.0.128/25", network="other")  # another network: fine


def test_proxy_only_subnet_rules(compute: Compute) -> None:
    make_network(compute)
    with pytest.raises(exceptions.BadRequest, match="Subnetwork role must be specified"):
        make_subnet(compute, "proxy", "10.9.0.0/24", purpose="REGIONAL_MANAGED_PROXY")
    make_subnet(compute, "proxy", "10.9.0.0/24", purpose="REGIONAL_MANAGED_PROXY", role="ACTIVE")
    with pytest.raises(exceptions.BadRequest, match="active proxy-only subnetwork"):
        make_subnet(
            compute, "proxy2", "10.9.1.0/24", purpose="REGIONAL_MANAGED_PROXY", role="ACTIVE"
        )
    make_subnet(compute, "proxy2", "10.9.1.0/24", purpose="REGIONAL_MANAGED_PROXY", role="BACKUP")


def _ilb_chain(compute: Compute) -> None:
    """Serverless NEG -> backend service -> URL map -> target HTTP proxy."""
    compute.wait(
        compute.region_network_endpoint_groups.insert(
            project=PROJECT,
            region=REGION,
            network_endpoint_group_resource={
                "name": "neg",
                "network_endpoint_type": "SERVERLESS",
                "cloud_run": {"service": "hello"},
            },
        )
    )
    compute.wait(
        compute.region_backend_services.insert(
            project=PROJECT,
            region=REGION,
            backend_service_resource={
                "name": "bs",
                "load_balancing_scheme": "INTERNAL_MANAGED",
                "protocol": "HTTPS",
                "backends": [{"group": f"regions/{REGION}/networkEndpointGroups/neg"}],
            },
        )
    )
    compute.wait(
        compute.region_url_maps.insert(
            project=PROJECT,
            region=REGION,
            url_map_resource={
                "name": "map",
                "default_service": f"regions/{REGION}/backendServices/bs",
            },
        )
    )
    compute.wait(
        compute.region_target_http_proxies.insert(
            project=PROJECT,
            region=REGION,
            target_http_proxy_resource={
                "name": "proxy",
                "url_map": f"regions/{REGION}/urlMaps/map",
            },
        )
    )


def test_internal_managed_forwarding_rule_needs_a_proxy_only_subnet(compute: Compute) -> None:
    make_network(compute)
    make_subnet(compute, "ilb", "10.0.0.0/24")
    _ilb_chain(compute)
    rule = {
        "name": "fr",
        "load_balancing_scheme": "INTERNAL_MANAGED",
        "port_range": "80",
        "network": "global/networks/net",
        "subnetwork": f"regions/{REGION}/subnetworks/ilb",
        "target": f"regions/{REGION}/targetHttpProxies/proxy",
    }
    with pytest.raises(exceptions.BadRequest) as caught:
        compute.forwarding_rules.insert(
            project=PROJECT, region=REGION, forwarding_rule_resource=rule
        )
    assert "An active proxy-only subnetwork is required in the same region and VPC" in str(
        caught.value
    )
    make_subnet(compute, "proxy", "10.9.0.0/24", purpose="REGIONAL_MANAGED_PROXY", role="ACTIVE")
    compute.wait(
        compute.forwarding_rules.insert(
            project=PROJECT, region=REGION, forwarding_rule_resource=rule
        )
    )
    created = compute.forwarding_rules.get(project=PROJECT, region=REGION, forwarding_rule="fr")
    assert created.I_p_address == "10.0.0.2"
    assert created.I_p_protocol == "TCP"
    with pytest.raises(exceptions.BadRequest, match="resourceInUse|already being used"):
        compute.region_target_http_proxies.delete(
            project=PROJECT, region=REGION, target_http_proxy="proxy"
        )


def test_serverless_neg_backend_service_takes_no_health_check(compute: Compute) -> None:
    compute.wait(
        compute.health_checks.insert(
            project=PROJECT,
            health_check_resource={"name": "hc", "type_": "TCP", "tcp_health_check": {"port": 80}},
        )
    )
    compute.wait(
        compute.region_network_endpoint_groups.insert(
            project=PROJECT,
            region=REGION,
            network_endpoint_group_resource={
                "name": "neg",
                "network_endpoint_type": "SERVERLESS",
                "cloud_run": {"service": "x"},
            },
        )
    )
    with pytest.raises(exceptions.BadRequest) as caught:
        compute.region_backend_services.insert(
            project=PROJECT,
            region=REGION,
            backend_service_resource={
                "name": "bs",
                "load_balancing_scheme": "INTERNAL_MANAGED",
                "backends": [{"group": f"regions/{REGION}/networkEndpointGroups/neg"}],
                "health_checks": [f"projects/{PROJECT}/global/healthChecks/hc"],
            },
        )
    assert "A backend service cannot have a healthcheck with Serverless network endpoint group" in (
        str(caught.value)
    )


def test_addresses_are_allocated(compute: Compute) -> None:
    make_network(compute)
    make_subnet(compute, "s", "10.0.0.0/24")
    compute.wait(
        compute.addresses.insert(
            project=PROJECT,
            region=REGION,
            address_resource={
                "name": "ip",
                "address_type": "INTERNAL",
                "subnetwork": f"regions/{REGION}/subnetworks/s",
            },
        )
    )
    compute.wait(
        compute.global_addresses.insert(
            project=PROJECT,
            address_resource={
                "name": "psa",
                "purpose": "VPC_PEERING",
                "address_type": "INTERNAL",
                "address": "10.100.0.0",
                "prefix_length": 22,
                "network": "global/networks/net",
            },
        )
    )
    compute.wait(compute.global_addresses.insert(project=PROJECT, address_resource={"name": "vip"}))
    internal = compute.addresses.get(project=PROJECT, region=REGION, address="ip")
    peering = compute.global_addresses.get(project=PROJECT, address="psa")
    public = compute.global_addresses.get(project=PROJECT, address="vip")
    assert internal.address == "10.0.0.2"
    assert (peering.address, peering.prefix_length) == ("10.100.0.0", 22)
    assert not public.address.startswith("10.")
    assert public.status == "RESERVED"


def test_external_forwarding_rule_gets_a_public_address(compute: Compute) -> None:
    _ilb_chain(compute)
    compute.wait(
        compute.forwarding_rules.insert(
            project=PROJECT,
            region=REGION,
            forwarding_rule_resource={
                "name": "pub",
                "load_balancing_scheme": "EXTERNAL_MANAGED",
                "port_range": "80",
                "target": f"regions/{REGION}/targetHttpProxies/proxy",
            },
        )
    )
    rule = compute.forwarding_rules.get(project=PROJECT, region=REGION, forwarding_rule="pub")
    assert rule.I_p_address and not rule.I_p_address.startswith("10.")
    assert rule.network_tier == "PREMIUM"


def test_firewall_without_network_lands_on_default(compute: Compute) -> None:
    rule = {"name": "fw", "allowed": [{"I_p_protocol": "tcp", "ports": ["22"]}]}
    with pytest.raises(exceptions.NotFound, match="networks/default"):
        compute.firewalls.insert(project=PROJECT, firewall_resource=rule)
    make_network(compute, "default")
    compute.wait(compute.firewalls.insert(project=PROJECT, firewall_resource=rule))
    firewall = compute.firewalls.get(project=PROJECT, firewall="fw")
    assert firewall.network.endswith("/global/networks/default")
    assert (firewall.direction, firewall.priority) == ("INGRESS", 1000)


def test_unimplemented_method_answers_501_naming_it(compute: Compute) -> None:
    make_network(compute)
    with pytest.raises(exceptions.MethodNotImplemented, match="compute.networks.addPeering"):
        compute.networks.add_peering(
            project=PROJECT,
            network="net",
            networks_add_peering_request_resource={
                "name": "p",
                "peer_network": "global/networks/net",
            },
        )
