"""Service Networking through google-api-python-client, and the compute side of its peering
(networks.get, updatePeering, removePeering, delete) through google-cloud-compute."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

from .conftest import PROJECT, Compute

SERVICE = "services/servicenetworking.googleapis.com"
CONNECTION = f"{SERVICE}/connections/servicenetworking-googleapis-com"
PEERING = "servicenetworking-googleapis-com"
POLL = 10.0  # simulated seconds between a client's polls of an operation


def error_of(exc: HttpError) -> dict[str, Any]:
    return json.loads(exc.content)["error"]


def wait(emulator: Emulator, api: Any, op: dict[str, Any]) -> dict[str, Any]:
    """Get a long-running operation until it is done, as a client polls one, moving the
    emulator's clock ahead between polls instead of sleeping."""
    while not op.get("done"):
        emulator.skip(POLL)
        op = api.operations().get(name=op["name"]).execute()
    return op


def number_of(google_api: Any, project: str = PROJECT) -> str:
    found = google_api("cloudresourcemanager", "v3").projects().get(name=f"projects/{project}")
    return found.execute()["name"].split("/")[1]


def network_setup(compute: Compute, name: str = "net") -> None:
    compute.wait(compute.networks.insert(project=PROJECT, network_resource={"name": name}))
    for address, prefix in (("psa-runtime", 22), ("psa-support", 28)):
        compute.wait(
            compute.global_addresses.insert(
                project=PROJECT,
                address_resource=compute_v1.Address(
                    name=address,
                    purpose="VPC_PEERING",
                    address_type="INTERNAL",
                    prefix_length=prefix,
                    network=f"global/networks/{name}",
                ),
            )
        )


def connect(emulator: Emulator, google_api: Any, ranges: list[str] | None = None) -> dict[str, Any]:
    api = google_api("servicenetworking", "v1")
    body = {
        "network": f"projects/{number_of(google_api)}/global/networks/net",
        "reservedPeeringRanges": ranges or ["psa-runtime", "psa-support"],
    }
    return wait(
        emulator, api, api.services().connections().create(parent=SERVICE, body=body).execute()
    )


def test_the_network_must_be_named_by_project_number(compute: Compute, google_api) -> None:
    network_setup(compute)
    api = google_api("servicenetworking", "v1").services().connections()
    body = {
        "network": f"projects/{PROJECT}/global/networks/net",
        "reservedPeeringRanges": ["psa-runtime"],
    }
    with pytest.raises(HttpError) as caught:
        api.create(parent=SERVICE, body=body).execute()
    assert caught.value.status_code == 400
    assert "project number" in error_of(caught.value)["message"]
    with pytest.raises(HttpError) as caught:
        api.list(parent=SERVICE, network=body["network"]).execute()
    assert caught.value.status_code == 400


def test_reserved_ranges_must_be_peering_addresses_of_the_network(
    emulator: Emulator, compute: Compute, google_api
) -> None:
    network_setup(compute)
    compute.wait(
        compute.global_addresses.insert(project=PROJECT, address_resource={"name": "public-ip"})
    )
    # Google takes the request and fails its operation, code 9 (FAILED_PRECONDITION).
    for ranges in (["missing"], ["public-ip"]):
        error = connect(emulator, google_api, ranges)["error"]
        assert error["code"] == 9
        assert error["message"] == f"Allocated IP range '{ranges[0]}' not found in network."


def test_connection_peers_the_network(emulator: Emulator, compute: Compute, google_api) -> None:
    network_setup(compute)
    api = google_api("servicenetworking", "v1")
    number = number_of(google_api)
    network = f"projects/{number}/global/networks/net"
    started = (
        api.services()
        .connections()
        .create(parent=SERVICE, body={"network": network, "reservedPeeringRanges": ["psa-runtime"]})
        .execute()
    )
    assert started["name"].startswith("operations/") and not started.get("done")

    done = wait(emulator, api, started)
    assert done["response"]["@type"].endswith(".Connection")
    assert done["response"]["peering"] == PEERING

    peerings = compute.networks.get(project=PROJECT, network="net").peerings
    assert [(p.name, p.state, p.export_custom_routes) for p in peerings] == [
        (PEERING, "ACTIVE", False)
    ]
    assert peerings[0].network.endswith("/global/networks/servicenetworking")

    listed = api.services().connections().list(parent=SERVICE, network=network).execute()
    assert listed["connections"] == [
        {
            "network": network,
            "reservedPeeringRanges": ["psa-runtime"],
            "peering": PEERING,
            "service": SERVICE,
        }
    ]


def test_create_again_is_idempotent_but_cannot_change_ranges(
    emulator: Emulator, compute: Compute, google_api
) -> None:
    network_setup(compute)
    connect(emulator, google_api, ["psa-runtime"])
    assert connect(emulator, google_api, ["psa-runtime"])["done"]
    error = connect(emulator, google_api, ["psa-runtime", "psa-support"])["error"]
    assert error["code"] == 9 and "Please use UpdateConnection" in error["message"]

    api = google_api("servicenetworking", "v1")
    network = f"projects/{number_of(google_api)}/global/networks/net"
    body = {"network": network, "reservedPeeringRanges": ["psa-runtime", "psa-support"]}
    wait(emulator, api, api.services().connections().patch(
        name=f"{SERVICE}/connections/-", updateMask="reservedPeeringRanges", body=body
    ).execute())  # fmt: skip
    listed = api.services().connections().list(parent=SERVICE, network=network).execute()
    assert listed["connections"][0]["reservedPeeringRanges"] == ["psa-runtime", "psa-support"]


def test_update_peering_exports_custom_routes(
    emulator: Emulator, compute: Compute, google_api
) -> None:
    network_setup(compute)
    connect(emulator, google_api)
    op = compute.networks.update_peering(
        project=PROJECT,
        network="net",
        networks_update_peering_request_resource={
            "network_peering": {"name": PEERING, "export_custom_routes": True}
        },
    )
    done = compute.wait(op)
    assert done.operation_type == "updatePeering"
    assert done.target_link.endswith("/global/networks/net")
    peering = compute.networks.get(project=PROJECT, network="net").peerings[0]
    assert (peering.export_custom_routes, peering.import_custom_routes) == (True, False)

    with pytest.raises(exceptions.BadRequest, match="There is no peering"):
        compute.networks.update_peering(
            project=PROJECT,
            network="net",
            networks_update_peering_request_resource={"network_peering": {"name": "other"}},
        )


def test_a_peered_network_cannot_be_deleted(
    emulator: Emulator, compute: Compute, google_api
) -> None:
    network_setup(compute)
    connect(emulator, google_api)
    for address in ("psa-runtime", "psa-support"):
        compute.wait(compute.global_addresses.delete(project=PROJECT, address=address))
    with pytest.raises(exceptions.BadRequest, match=f"peerings/{PEERING}") as caught:
        compute.networks.delete(project=PROJECT, network="net")
    assert caught.value.errors[0]["reason"] == "resourceInUseByAnotherResource"

    compute.wait(
        compute.networks.remove_peering(
            project=PROJECT,
            network="net",
            networks_remove_peering_request_resource={"name": PEERING},
        )
    )
    compute.wait(compute.networks.delete(project=PROJECT, network="net"))


def test_delete_connection_removes_the_peering(
    emulator: Emulator, compute: Compute, google_api
) -> None:
    network_setup(compute)
    connect(emulator, google_api)
    api = google_api("servicenetworking", "v1")
    network = f"projects/{number_of(google_api)}/global/networks/net"
    done = wait(emulator, api, api.services().connections().deleteConnection(
        name=CONNECTION, body={"consumerNetwork": network}
    ).execute())  # fmt: skip
    assert "error" not in done
    assert not compute.networks.get(project=PROJECT, network="net").peerings
    assert api.services().connections().list(parent=SERVICE, network=network).execute() == {}
    with pytest.raises(HttpError) as caught:
        api.services().connections().deleteConnection(
            name=CONNECTION, body={"consumerNetwork": network}
        ).execute()
    assert "There is no peering" in error_of(caught.value)["message"]


def test_peered_dns_domains(emulator: Emulator, compute: Compute, google_api) -> None:
    network_setup(compute)
    api = google_api("servicenetworking", "v1")
    domains = api.services().projects().global_().networks().peeredDnsDomains()
    parent = f"{SERVICE}/projects/{number_of(google_api)}/global/networks/net"
    body = {"name": "apigee-dns", "dnsSuffix": "example.internal."}
    with pytest.raises(HttpError) as caught:  # needs the connection
        domains.create(parent=parent, body=body).execute()
    assert caught.value.status_code == 400

    connect(emulator, google_api)
    with pytest.raises(HttpError) as caught:
        domains.create(parent=parent, body={**body, "dnsSuffix": "example.internal"}).execute()
    assert "must end with a dot" in error_of(caught.value)["message"]

    done = wait(emulator, api, domains.create(parent=parent, body=body).execute())
    assert done["response"]["dnsSuffix"] == "example.internal."
    assert domains.list(parent=parent).execute() == {"peeredDnsDomains": [body]}
    with pytest.raises(HttpError) as caught:
        domains.create(parent=parent, body=body).execute()
    assert caught.value.status_code == 409

    wait(emulator, api, domains.delete(name=f"{parent}/peeredDnsDomains/apigee-dns").execute())
    assert domains.list(parent=parent).execute() == {}
