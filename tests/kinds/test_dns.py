"""dns.managed_zone and dns.record_set end to end: private and peering zones bound to their
networks, an A record holding another step's address, updates as one change, destroy order."""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from .conftest import PROJECT, REGION, mutating

PLAN = f"""
name: dns-kinds
vars:
  ttl: "300"
  description: internal load balancer
defaults: {{project: {PROJECT}, region: {REGION}}}
steps:
  - id: apigee-vpc
    kind: compute.network
    name: apigee-vpc
    properties: {{autoCreateSubnetworks: false}}
  - id: ilb-vpc
    kind: compute.network
    name: ilb-vpc
    properties: {{autoCreateSubnetworks: false}}
  - id: ilb-subnet
    kind: compute.subnetwork
    name: ilb-subnet
    properties: {{network: "${{ilb-vpc.selfLink}}", ipCidrRange: 10.100.0.0/24}}
  - id: ilb-ip
    kind: compute.address
    name: ilb-ip
    properties: {{addressType: INTERNAL, subnetwork: "${{ilb-subnet.selfLink}}"}}
  - id: ilb-zone
    kind: dns.managed_zone
    name: ilb-example
    properties:
      dnsName: example.com.
      visibility: private
      description: ${{vars.description}}
      privateVisibilityConfig: {{networks: [{{networkUrl: "${{ilb-vpc.selfLink}}"}}]}}
  - id: peering-zone
    kind: dns.managed_zone
    name: ilb-peering
    properties:
      dnsName: internal.example.com.
      visibility: private
      privateVisibilityConfig: {{networks: [{{networkUrl: "${{apigee-vpc.selfLink}}"}}]}}
      peeringConfig: {{targetNetwork: {{networkUrl: "${{ilb-vpc.selfLink}}"}}}}
  - id: api-record
    kind: dns.record_set
    name: api.example.com.
    managed_zone: ${{ilb-zone.name}}
    properties:
      type: A
      ttl: ${{vars.ttl}}
      rrdatas: ["${{ilb-ip.address}}"]
  - id: www-record
    kind: dns.record_set
    name: www.example.com.
    managed_zone: ${{ilb-zone.name}}
    properties: {{type: CNAME, ttl: 300, rrdatas: [api.example.com.]}}
"""


def records(dns_client, zone: str) -> dict[tuple[str, str], tuple[int, list[str]]]:
    listed = dns_client.zone(zone).list_resource_record_sets()
    return {(r.name, r.record_type): (r.ttl, list(r.rrdatas)) for r in listed}


def address(emulator) -> str:
    client = compute_v1.AddressesClient(
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"{emulator.url}/compute"},
    )
    return client.get(project=PROJECT, region=REGION, address="ilb-ip").address


def test_private_and_peering_zones_are_bound_to_their_networks(deploy, dns_api):
    result = deploy(PLAN).apply()
    assert result.ok, result.failures
    zones = dns_api.managedZones()
    ilb = zones.get(project=PROJECT, managedZone="ilb-example").execute()
    assert ilb["dnsName"] == "example.com." and ilb["visibility"] == "private"
    [network] = ilb["privateVisibilityConfig"]["networks"]
    assert network["networkUrl"].endswith(f"projects/{PROJECT}/global/networks/ilb-vpc")
    peering = zones.get(project=PROJECT, managedZone="ilb-peering").execute()
    [seen_from] = peering["privateVisibilityConfig"]["networks"]
    assert seen_from["networkUrl"].endswith("/global/networks/apigee-vpc")
    target = peering["peeringConfig"]["targetNetwork"]["networkUrl"]
    assert target.endswith(f"projects/{PROJECT}/global/networks/ilb-vpc")


def test_a_record_holds_the_address_another_step_reserved(emulator, deploy, dns_client):
    dep = deploy(PLAN)
    assert dep.apply().ok
    ip = address(emulator)
    held = records(dns_client, "ilb-example")
    assert held[("api.example.com.", "A")] == (300, [ip])
    assert held[("www.example.com.", "CNAME")] == (300, ["api.example.com."])
    assert dep.outputs()["api-record"]["rrdatas"] == [ip]
    assert dep.ledger().resources["api-record"].depends_on == ["ilb-ip", "ilb-zone"]
    # Each change was created, then awaited until done through google-cloud-dns.
    counts = emulator.request_counts()
    assert counts["dns.changes.create"] == 2 and counts["dns.changes.get"] >= 2


def test_reapply_makes_no_mutating_request(emulator, deploy):
    assert deploy(PLAN).apply().ok
    before = len(emulator.requests())
    result = deploy(PLAN).apply()
    assert result.ok and set(result.actions.values()) == {"noop"}
    assert mutating(emulator, before) == []


def test_changed_ttl_is_one_change_deleting_the_old_and_adding_the_new(
    emulator, deploy, dns_client
):
    assert deploy(PLAN).apply().ok
    dep = deploy(PLAN, vars={"ttl": "60"})
    change = next(s for s in dep.plan_changes().steps if s.step == "api-record")
    assert change.action == "update" and [c.field for c in change.changes] == ["ttl"]
    before = len(emulator.requests())
    result = dep.apply()
    assert result.ok and result.actions["api-record"] == "update"
    assert mutating(emulator, before) == ["dns.changes.create"]
    last = max(dns_client.zone("ilb-example").list_changes(), key=lambda c: int(c.name))
    assert [(r.name, r.ttl) for r in last.deletions] == [("api.example.com.", 300)]
    assert [(r.name, r.ttl) for r in last.additions] == [("api.example.com.", 60)]
    assert records(dns_client, "ilb-example")[("api.example.com.", "A")][0] == 60


def test_zone_description_is_patched_in_place(emulator, deploy, dns_api):
    assert deploy(PLAN).apply().ok
    before = len(emulator.requests())
    result = deploy(PLAN, vars={"description": "ILB, europe-west1"}).apply()
    assert result.ok and result.actions["ilb-zone"] == "update"
    assert mutating(emulator, before) == ["dns.managedZones.patch"]
    zone = dns_api.managedZones().get(project=PROJECT, managedZone="ilb-example").execute()
    assert zone["description"] == "ILB, europe-west1"
    assert zone["privateVisibilityConfig"]["networks"][0]["networkUrl"].endswith("/ilb-vpc")


def test_destroy_empties_zones_before_deleting_them(emulator, deploy, dns_api):
    dep = deploy(PLAN)
    assert dep.apply().ok
    before = len(emulator.requests())
    result = dep.destroy()
    assert result.ok, result.failures
    log = [(r["method"], r["path"], r["status"]) for r in emulator.requests()[before:]]
    zone_delete = next(
        i for i, (m, path, status) in enumerate(log)
        if m == "dns.managedZones.delete" and path.endswith("/ilb-example") and status == 200
    )
    changes = [i for i, (m, _, _) in enumerate(log) if m == "dns.changes.create"]
    assert len(changes) == 2 and max(changes) < zone_delete
    # Each deletion was awaited until done before the zone went.
    assert max(i for i, (m, _, _) in enumerate(log) if m == "dns.changes.get") < zone_delete
    assert dns_api.managedZones().list(project=PROJECT).execute().get("managedZones", []) == []
    assert dep.ledger().resources == {}


def test_record_made_out_of_band_blocks_the_zone_with_a_clear_message(
    emulator, deploy, dns_client
):
    dep = deploy(PLAN)
    assert dep.apply().ok
    zone = dns_client.zone("ilb-example")
    stray = zone.resource_record_set("legacy.example.com.", "TXT", 300, ['"keep me"'])
    change = zone.changes()
    change.add_record_set(stray)
    change.create()

    result = dep.destroy()
    assert [f.step for f in result.failures] == ["ilb-zone"]
    message = result.failures[0].message
    assert "containerNotEmpty" in message and "legacy.example.com. TXT" in message
    assert "api.example.com." not in message  # the plan's own records went first
    assert "gcloud dns record-sets delete" in message and "--zone=ilb-example" in message
    assert "ilb-zone" in dep.ledger().resources

    cleanup = zone.changes()
    cleanup.delete_record_set(stray)
    cleanup.create()
    while cleanup.status != "done":
        cleanup.reload()
    assert dep.destroy().ok
    assert dep.ledger().resources == {}
