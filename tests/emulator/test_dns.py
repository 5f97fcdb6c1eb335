"""Cloud DNS through google-cloud-dns (zones, change sets) and google-api-python-client (private
and peering zones, the direct record-set methods)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import dns
from google.cloud import exceptions as cloud_exceptions
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

from .conftest import PROJECT, Compute

NET_URL = f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/networks/net"


def dns_client(url: str) -> dns.Client:
    return dns.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"{url}/dns"},
    )


@pytest.fixture
def client(emulator: Emulator) -> dns.Client:
    return dns_client(emulator.url)


@pytest.fixture(scope="module")
def slow_client() -> Iterator[dns.Client]:
    """Changes take 0.3 s here: long enough to see one pending."""
    with Emulator(durations={"dns.changes": 300}) as emu:
        yield dns_client(emu.url)


def error_of(exc: HttpError) -> dict[str, Any]:
    return json.loads(exc.content)["error"]


def make_zone(client: dns.Client, name: str = "example", dns_name: str = "example.com.") -> Any:
    zone = client.zone(name, dns_name, description="test zone")
    zone.create()
    return zone


def apply(zone: Any, add: list[Any] = (), delete: list[Any] = ()) -> Any:
    """A change set, created and then reloaded until done (as the orchestrator waits)."""
    change = zone.changes()
    for record in add:
        change.add_record_set(record)
    for record in delete:
        change.delete_record_set(record)
    change.create()
    while change.status != "done":
        change.reload()
    return change


def records(zone: Any) -> list[tuple[str, str, int, list[str]]]:
    return [(r.name, r.record_type, r.ttl, r.rrdatas) for r in zone.list_resource_record_sets()]


# --- google-cloud-dns -----------------------------------------------------------------------


def test_a_new_zone_has_its_soa_and_ns_record_sets(client: dns.Client) -> None:
    zone = make_zone(client)
    assert len(zone.name_servers) == 4
    assert zone.zone_id and zone.created is not None
    listed = records(zone)
    assert [(name, kind) for name, kind, _, _ in listed] == [
        ("example.com.", "NS"),
        ("example.com.", "SOA"),
    ]
    assert listed[0][3] == zone.name_servers
    assert [z.name for z in client.list_zones()] == ["example"]
    with pytest.raises(cloud_exceptions.Conflict, match="already exists"):
        make_zone(client)


def test_a_change_is_pending_then_done(slow_client: dns.Client) -> None:
    zone = make_zone(slow_client, "pending-zone")
    change = zone.changes()
    change.add_record_set(zone.resource_record_set("www.example.com.", "A", 300, ["10.0.0.5"]))
    change.create()
    assert change.status == "pending" and change.name
    assert ("www.example.com.", "A", 300, ["10.0.0.5"]) not in records(zone)
    while change.status != "done":
        change.reload()
    assert ("www.example.com.", "A", 300, ["10.0.0.5"]) in records(zone)


def test_adding_an_existing_record_set_is_409(client: dns.Client) -> None:
    zone = make_zone(client)
    www = zone.resource_record_set("www.example.com.", "A", 300, ["10.0.0.5"])
    apply(zone, add=[www])
    with pytest.raises(cloud_exceptions.Conflict, match=r"additions\[0\].*already exists"):
        apply(zone, add=[zone.resource_record_set("www.example.com.", "A", 60, ["10.0.0.6"])])


def test_a_deletion_must_match_the_record_set_exactly(client: dns.Client) -> None:
    zone = make_zone(client)
    apply(zone, add=[zone.resource_record_set("www.example.com.", "A", 300, ["10.0.0.5"])])
    stale = zone.resource_record_set("www.example.com.", "A", 300, ["10.0.0.9"])
    with pytest.raises(cloud_exceptions.PreconditionFailed, match=r"deletions\[0\]"):
        apply(zone, delete=[stale])
    missing = zone.resource_record_set("api.example.com.", "A", 300, ["10.0.0.5"])
    with pytest.raises(cloud_exceptions.NotFound, match="does not exist"):
        apply(zone, delete=[missing])
    # Replacing a record set: delete the exact current one and add the new, in one change.
    current = zone.resource_record_set("www.example.com.", "A", 300, ["10.0.0.5"])
    new = zone.resource_record_set("www.example.com.", "A", 60, ["10.0.0.7"])
    apply(zone, add=[new], delete=[current])
    assert ("www.example.com.", "A", 60, ["10.0.0.7"]) in records(zone)


def test_a_change_is_checked_against_pending_ones(slow_client: dns.Client) -> None:
    zone = make_zone(slow_client, "queue-zone")
    www = zone.resource_record_set("www.example.com.", "A", 300, ["10.0.0.5"])
    first = zone.changes()
    first.add_record_set(www)
    first.create()
    assert first.status == "pending"
    with pytest.raises(cloud_exceptions.Conflict):  # already added, though not yet done
        apply(zone, add=[www])
    apply(zone, delete=[www])  # deletes what the pending change adds
    assert [kind for _, kind, _, _ in records(zone)] == ["NS", "SOA"]


def test_a_zone_with_records_cannot_be_deleted(client: dns.Client) -> None:
    zone = make_zone(client)
    www = zone.resource_record_set("www.example.com.", "A", 300, ["10.0.0.5"])
    apply(zone, add=[www])
    with pytest.raises(
        cloud_exceptions.BadRequest, match="cannot be deleted because it is not"
    ) as caught:
        zone.delete()
    assert caught.value.errors[0]["reason"] == "containerNotEmpty"
    apply(zone, delete=[www])
    zone.delete()
    assert not zone.exists()


def test_change_ids_and_listing(client: dns.Client) -> None:
    zone = make_zone(client)
    change = apply(zone, add=[zone.resource_record_set("a.example.com.", "A", 300, ["10.0.0.1"])])
    assert change.name == "1"  # change 0 made the SOA and NS
    assert [c.name for c in zone.list_changes()] == ["0", "1"]


def test_bad_record_data_is_refused(client: dns.Client) -> None:
    zone = make_zone(client)
    with pytest.raises(cloud_exceptions.BadRequest, match="rrdata"):
        apply(zone, add=[zone.resource_record_set("a.example.com.", "A", 300, ["10.0.0"])])
    with pytest.raises(cloud_exceptions.BadRequest, match="name"):
        apply(zone, add=[zone.resource_record_set("a.other.org.", "A", 300, ["10.0.0.1"])])


# --- google-api-python-client ---------------------------------------------------------------


def test_private_zone_networks_must_resolve(compute: Compute, google_api) -> None:
    zones = google_api("dns", "v1").managedZones()
    body = {
        "name": "internal",
        "dnsName": "example.internal.",
        "description": "",
        "visibility": "private",
        "privateVisibilityConfig": {"networks": [{"networkUrl": NET_URL}]},
    }
    with pytest.raises(HttpError) as caught:
        zones.create(project=PROJECT, body=body).execute()
    assert caught.value.status_code == 400
    assert "privateVisibilityConfig.networks[0].networkUrl" in error_of(caught.value)["message"]

    compute.wait(compute.networks.insert(project=PROJECT, network_resource={"name": "net"}))
    created = zones.create(project=PROJECT, body=body).execute()
    assert created["visibility"] == "private"
    assert created["privateVisibilityConfig"]["networks"][0]["networkUrl"] == NET_URL
    assert created["nameServers"] == ["ns-gcp-private.googledomains.com."]


def test_peering_zone_target_network_must_resolve(compute: Compute, google_api) -> None:
    zones = google_api("dns", "v1").managedZones()
    body = {
        "name": "peer",
        "dnsName": "corp.",
        "description": "",
        "visibility": "private",
        "peeringConfig": {"targetNetwork": {"networkUrl": NET_URL}},
    }
    with pytest.raises(HttpError) as caught:
        zones.create(project=PROJECT, body=body).execute()
    assert "peeringConfig.targetNetwork.networkUrl" in error_of(caught.value)["message"]
    compute.wait(compute.networks.insert(project=PROJECT, network_resource={"name": "net"}))
    assert zones.create(project=PROJECT, body=body).execute()["peeringConfig"]


def test_zone_get_list_patch_delete(google_api) -> None:
    zones = google_api("dns", "v1").managedZones()
    for name, dns_name in (("a", "a.example."), ("b", "b.example.")):
        body = {"name": name, "dnsName": dns_name, "description": ""}
        zones.create(project=PROJECT, body=body).execute()
    listed = zones.list(project=PROJECT, dnsName="b.example.").execute()
    assert [z["name"] for z in listed["managedZones"]] == ["b"]

    op = zones.patch(project=PROJECT, managedZone="a", body={"description": "new"}).execute()
    assert (op["kind"], op["status"], op["type"]) == ("dns#operation", "done", "UPDATE")
    assert op["zoneContext"]["newValue"]["description"] == "new"
    assert zones.get(project=PROJECT, managedZone="a").execute()["dnsName"] == "a.example."
    with pytest.raises(HttpError) as caught:
        zones.patch(project=PROJECT, managedZone="a", body={"dnsName": "c.example."}).execute()
    assert caught.value.status_code == 400

    zones.delete(project=PROJECT, managedZone="a").execute()
    with pytest.raises(HttpError) as caught:
        zones.get(project=PROJECT, managedZone="a").execute()
    assert caught.value.status_code == 404
    assert "'parameters.managedZone' resource named 'a' does not exist" in str(caught.value)


def test_record_set_methods_and_list_filters(google_api) -> None:
    api = google_api("dns", "v1")
    api.managedZones().create(
        project=PROJECT, body={"name": "z", "dnsName": "example.com.", "description": ""}
    ).execute()
    rrsets = api.resourceRecordSets()
    where = {"project": PROJECT, "managedZone": "z"}
    record = {"name": "api.example.com.", "type": "A", "ttl": 300, "rrdatas": ["10.1.0.2"]}
    assert rrsets.create(**where, body=record).execute()["rrdatas"] == ["10.1.0.2"]
    with pytest.raises(HttpError) as caught:
        rrsets.create(**where, body=record).execute()
    assert caught.value.status_code == 409

    got = rrsets.get(**where, name="api.example.com.", type="A").execute()
    assert got["ttl"] == 300
    patched = rrsets.patch(
        **where, name="api.example.com.", type="A", body={"rrdatas": ["10.1.0.3"]}
    ).execute()
    assert (patched["ttl"], patched["rrdatas"]) == (300, ["10.1.0.3"])

    by_name = rrsets.list(**where, name="api.example.com.").execute()["rrsets"]
    assert [r["type"] for r in by_name] == ["A"]
    by_type = rrsets.list(**where, name="example.com.", type="SOA").execute()["rrsets"]
    assert [r["type"] for r in by_type] == ["SOA"]

    rrsets.delete(**where, name="api.example.com.", type="A").execute()
    with pytest.raises(HttpError) as caught:
        rrsets.get(**where, name="api.example.com.", type="A").execute()
    assert caught.value.status_code == 404
    with pytest.raises(HttpError) as caught:  # the zone's own record sets stay
        rrsets.delete(**where, name="example.com.", type="SOA").execute()
    assert caught.value.status_code == 400


def test_discovery_client_changes(google_api) -> None:
    api = google_api("dns", "v1")
    api.managedZones().create(
        project=PROJECT, body={"name": "z", "dnsName": "example.com.", "description": ""}
    ).execute()
    where = {"project": PROJECT, "managedZone": "z"}
    addition = {"name": "x.example.com.", "type": "TXT", "ttl": 60, "rrdatas": ['"hello"']}
    change = api.changes().create(**where, body={"additions": [addition]}).execute()
    while change["status"] != "done":
        change = api.changes().get(**where, changeId=change["id"]).execute()
    listed = api.resourceRecordSets().list(**where, name="x.example.com.").execute()
    assert listed["rrsets"][0]["rrdatas"] == ['"hello"']
    with pytest.raises(HttpError) as caught:
        api.changes().get(**where, changeId="99").execute()
    assert "'parameters.changeId' resource named '99' does not exist" in str(caught.value)
