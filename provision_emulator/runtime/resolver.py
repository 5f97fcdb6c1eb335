"""Name resolution as the Apigee runtime meets it, from the emulator's Cloud DNS, Service
Networking and Apigee state.

Google's rules, as documented:
- The runtime resolves a private name through its organization's network only for the domains
  peered into its tenant (Service Networking `peeredDnsDomains` on the `authorizedNetwork`:
  https://cloud.google.com/vpc/docs/configure-private-services-access#dns-peering), or, for an
  organization without VPC peering, through its DNS zones (`organizations.dnsZones`, peering a
  domain into `peeringConfig`'s network:
  https://cloud.google.com/apigee/docs/api-platform/system-administration/peering-dns-zones).
  Any other name goes to public DNS, which the emulator does not have: it does not resolve.
- In a network, the private zone whose DNS name is the longest suffix of the name answers
  (https://cloud.google.com/dns/docs/zones/zones-overview#resolution-order); a peering zone
  hands the question to its target network; a CNAME is followed; a wildcard record `*.zone.`
  answers names below it that have no record of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provision_emulator.apis import apigee, dns

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

MAX_HOPS = 8  # CNAMEs and peering zones followed before giving up, as a resolver would


@dataclass(frozen=True)
class Answer:
    """An address, or why there is none (`why`), and the zone that answered."""

    address: str | None
    why: str = ""
    zone: str = ""


def network_path(link: str) -> str:
    return "projects/" + link.split("projects/", 1)[1] if "projects/" in link else link


def for_runtime(cloud: Cloud, org: dict[str, Any], host: str) -> Answer:
    """What the organization's runtime gets for `host`."""
    name = host.rstrip(".").lower() + "."
    network = _runtime_network(cloud, org, name)
    if network is None:
        return Answer(None, f"{name} is not in a domain peered into the Apigee runtime; public "
                            "DNS does not know it")
    return in_network(cloud, network, name)


def _runtime_network(cloud: Cloud, org: dict[str, Any], name: str) -> str | None:
    if org.get("disableVpcPeering"):
        zones = [r.body for r in cloud.store.in_collection("apigee", apigee.DNS_ZONES)
                 if r.path.startswith(f"organizations/{org['name']}/")]
        for zone in zones:
            domain = str(zone.get("domain", "")).rstrip(".").lower() + "."
            if _under(name, domain):
                peering = zone.get("peeringConfig") or {}
                return (f"projects/{peering.get('targetProjectId')}/global/networks/"
                        f"{peering.get('targetNetworkId')}")
        return None
    network = apigee.network_path(org)
    if network is None:
        return None
    project_number = cloud.project_number(network.split("/")[1])
    domains = [r.body for r in cloud.store.in_collection(
        "servicenetworking", "services.projects.global.networks.peeredDnsDomains")
        if f"/projects/{project_number}/global/networks/{network.rsplit('/', 1)[-1]}/"
        in f"/{r.path}"]
    if any(_under(name, str(d.get("dnsSuffix", "")).lower()) for d in domains):
        return network
    return None


def in_network(cloud: Cloud, network: str, name: str, hops: int = 0) -> Answer:
    """What a resolver in `network` gets for `name` (fully qualified, lower case)."""
    if hops > MAX_HOPS:
        return Answer(None, f"{name}: too many CNAMEs or peering zones")
    zone_res = _zone_for(cloud, network, name)
    if zone_res is None:
        return Answer(None, f"no private zone visible to {network} holds {name}")
    zone = zone_res.body
    peering = (zone.get("peeringConfig") or {}).get("targetNetwork") or {}
    if peering.get("networkUrl"):
        return in_network(cloud, network_path(peering["networkUrl"]), name, hops + 1)
    records = dns._records(cloud, zone_res.path)
    found = _lookup(records, name, zone["dnsName"])
    if found is None:
        return Answer(None, f"zone {zone['name']} has no record for {name}", zone["name"])
    if found["type"] == "CNAME":
        return in_network(cloud, network, found["rrdatas"][0].lower(), hops + 1)
    return Answer(found["rrdatas"][0], zone=zone["name"])


def _lookup(records: dict[tuple[str, str], dict[str, Any]], name: str,
            apex: str) -> dict[str, Any] | None:
    for candidate in (name, _wildcard(name, apex)):
        for kind in ("A", "CNAME"):
            if candidate and (candidate, kind) in records:
                return records[(candidate, kind)]
    return None


def _wildcard(name: str, apex: str) -> str:
    label, _, rest = name.partition(".")
    return f"*.{rest}" if label and _under(rest, apex) else ""


def _zone_for(cloud: Cloud, network: str, name: str) -> Any:
    visible = []
    for res in cloud.store.in_collection("dns", dns.ZONES):
        zone = res.body
        if zone.get("visibility") != "private":
            continue
        networks = (zone.get("privateVisibilityConfig") or {}).get("networks") or []
        if any(network_path(n.get("networkUrl", "")) == network for n in networks) and _under(
                name, str(zone.get("dnsName", "")).lower()):
            visible.append(res)
    return max(visible, key=lambda r: len(r.body["dnsName"]), default=None)


def _under(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)
