"""A hostname resolved as Cloud DNS answers it inside one VPC network, from live reads.

Cloud DNS answers a VM in a network from the private zones whose visibility lists that network,
the zone with the longest matching DNS name winning ("Cloud DNS uses the most specific zone",
https://cloud.google.com/dns/docs/zones/zones-overview#resolution-order); a peering zone sends
the question on to its target network; a name the winning zone does not hold is NXDOMAIN,
whatever a less specific zone holds. Forwarding zones send it outside Google: not followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.verify.live import Live, Unreadable, compute_path
from orchestrator.verify.report import Hop

# Beyond this many CNAMEs or peering hops, stop: a loop, or nothing a user built on purpose.
MAX_HOPS = 8


@dataclass
class Answer:
    """What the network's DNS answers for a name: addresses, or why there are none.

    zones: the zones that answered, in order (project, zone name), and the record sets read,
    so that a hop can name the steps that made them.
    """

    name: str
    addresses: list[str] = field(default_factory=list)
    zones: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    records: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    problem: str = ""
    followed: list[str] = field(default_factory=list)
    # Private zones that hold the name but are not visible to the network asking.
    hidden: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def network_path(network: str, project: str) -> str:
    """A network as "projects/P/global/networks/N", from a URL, a partial path or a bare name
    (which Apigee's authorizedNetwork may be: a network of the organization's project)."""
    if "/" not in network:
        return f"projects/{project}/global/networks/{network}"
    return compute_path(network)


def _visible(zone: dict[str, Any], network: str) -> bool:
    if zone.get("visibility") != "private":
        return False
    networks = zone.get("privateVisibilityConfig", {}).get("networks", [])
    return any(compute_path(n.get("networkUrl", "")) == network for n in networks)


def _zones(live: Live, projects: list[str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for project in projects:
        out += [(project, z) for z in live.items("dns.managedZones.list", "managedZones",
                                                 project=project)]
    return out


def resolve(live: Live, projects: list[str], network: str, name: str) -> Answer:
    """Resolve `name` as a VM in `network` would, from the zones in `projects` (the projects
    whose zones could be visible to it). Raises Unreadable when a read does not answer."""
    answer = Answer(fqdn(name))
    _resolve(live, _zones(live, projects), network, answer.name, answer, 0)
    return answer


def _resolve(live: Live, zones: list[tuple[str, dict[str, Any]]], network: str, name: str,
             answer: Answer, depth: int) -> None:
    if depth > MAX_HOPS:
        answer.problem = f"{answer.name} does not resolve within {MAX_HOPS} CNAMEs or peerings"
        return
    candidates = [(p, z) for p, z in zones if _visible(z, network)
                  and (name == z["dnsName"] or name.endswith("." + z["dnsName"]))]
    if not candidates:
        visible = sorted(z["dnsName"] for _, z in zones if _visible(z, network))
        answer.hidden = [(p, z) for p, z in zones if z.get("visibility") == "private"
                         and (name == z["dnsName"] or name.endswith("." + z["dnsName"]))]
        elsewhere = "".join(f"; zone {z['name']} of {p} holds {z['dnsName']} but is not "
                            f"visible to it" for p, z in answer.hidden)
        answer.problem = (
            f"no private zone visible to {network} holds {name} (zones visible to it: "
            f"{', '.join(visible) or 'none'}){elsewhere}"
        )
        return
    project, zone = max(candidates, key=lambda pz: len(pz[1]["dnsName"]))
    answer.zones.append((project, zone))
    target = zone.get("peeringConfig", {}).get("targetNetwork", {}).get("networkUrl")
    if target:
        answer.followed.append(f"peering zone {zone['name']} → {compute_path(target)}")
        _resolve(live, zones, compute_path(target), name, answer, depth + 1)
        return
    if zone.get("forwardingConfig"):
        raise Unreadable(
            f"zone {zone['name']} forwards {zone['dnsName']} to name servers outside Google "
            "Cloud: their answers cannot be read"
        )
    rrsets = live.items("dns.resourceRecordSets.list", "rrsets", project=project,
                        managedZone=zone["name"], name=name)
    by_type = {r.get("type"): r for r in rrsets if r.get("name") == name}
    if "A" in by_type:
        answer.records.append((project, zone["name"], by_type["A"]))
        answer.addresses = list(by_type["A"].get("rrdatas", []))
        return
    if "CNAME" in by_type:
        answer.records.append((project, zone["name"], by_type["CNAME"]))
        alias = fqdn(by_type["CNAME"]["rrdatas"][0])
        answer.followed.append(f"CNAME {name} → {alias}")
        _resolve(live, zones, network, alias, answer, depth + 1)
        return
    answer.problem = (
        f"zone {zone['name']} ({zone['dnsName']}, project {project}) is the most specific zone "
        f"for {name} in {network}, and holds no A or CNAME record for it: NXDOMAIN"
    )


SERVICE_NETWORKING = "services/servicenetworking.googleapis.com"


@dataclass(frozen=True)
class Forwarded:
    """A domain Apigee's runtime resolves inside a VPC network, rather than on the internet.

    how: what sends it there, in words ("peered DNS domain", "Apigee DNS zone NAME").
    kind: the kind of step that makes such a forwarding (to name it when one is missing).
    """

    suffix: str
    network: str
    how: str
    kind: str


def runtime_network(live: Live, organization: str) -> tuple[dict[str, Any], str]:
    """An Apigee organization and the VPC network its runtime is peered with (its
    authorizedNetwork), as "projects/P/global/networks/N"; Unreadable for an organization
    without VPC peering, which has none."""
    org = live.get("apigee.organizations.get", name=f"organizations/{organization}")
    if org is None:
        raise Unreadable(f"organization {organization} is not there")
    if org.get("disableVpcPeering"):
        raise Unreadable(f"organization {organization} has no VPC peering")
    return org, network_path(org.get("authorizedNetwork", ""), org.get("projectId", ""))


def runtime_dns(live: Live, organization: str) -> list[Forwarded]:
    """Where Apigee's runtime resolves which domains. With VPC peering: the domains peered
    through Service Networking, in the authorized network
    (https://cloud.google.com/vpc/docs/configure-private-services-access#dns-peering); without:
    the organization's Apigee DNS zones, each in the network it peers into
    (https://cloud.google.com/apigee/docs/api-platform/get-started/non-vpc-peering-options). Any
    other name it resolves on the internet."""
    org = live.get("apigee.organizations.get", name=f"organizations/{organization}")
    if org is None:
        raise Unreadable(f"organization {organization} is not there")
    if org.get("disableVpcPeering"):
        out = []
        for zone in live.items("apigee.organizations.dnsZones.list", "dnsZones",
                               parent=f"organizations/{organization}"):
            peering = zone.get("peeringConfig", {})
            network = (f"projects/{peering.get('targetProjectId')}/global/networks/"
                       f"{peering.get('targetNetworkId')}")
            out.append(Forwarded(fqdn(zone.get("domain", "")), network,
                                 f"Apigee DNS zone {zone['name'].rsplit('/', 1)[-1]}",
                                 "apigee.dns_zone"))
        return out
    network = network_path(org.get("authorizedNetwork", ""), org.get("projectId", ""))
    return [Forwarded(d, network, "peered DNS domain", "servicenetworking.peered_dns_domain")
            for d in peered_domains(live, network)]


def peered_domains(live: Live, network: str) -> list[str]:
    """The DNS suffixes peered through Service Networking on `network`."""
    project, name = network.split("/")[1], network.rsplit("/", 1)[-1]
    found = live.get("cloudresourcemanager.projects.get", name=f"projects/{project}")
    number = (found or {}).get("name", f"projects/{project}").split("/", 1)[1]
    return [fqdn(d["dnsSuffix"]) for d in live.items(
        "servicenetworking.services.projects.global.networks.peeredDnsDomains.list",
        "peeredDnsDomains",
        parent=f"{SERVICE_NETWORKING}/projects/{number}/global/networks/{name}",
    )]


def forwarding_for(entries: list[Forwarded], host: str) -> Forwarded | None:
    """The most specific forwarding that covers `host`."""
    covering = [e for e in entries if covers(e.suffix, host)]
    return max(covering, key=lambda e: len(e.suffix)) if covering else None


def covers(suffix: str, name: str) -> bool:
    return fqdn(name) == suffix or fqdn(name).endswith("." + suffix)


def not_forwarded(ctx: Any, entries: list[Forwarded], host: str, peered: bool) -> Hop:
    """The dns hop when Apigee would not ask any VPC network about `host`: it resolves it on
    the internet, where a private name does not exist."""
    kind = "servicenetworking.peered_dns_domain" if peered else "apigee.dns_zone"
    steps = ctx.steps_under("", kind)
    what = "peered DNS domain" if peered else "Apigee DNS zone"
    listed = ", ".join(f"{e.suffix} → {e.network}" for e in entries) or "none"
    return Hop(
        "dns", "broken",
        f"Apigee resolves {host} on the internet: no {what} covers it ({what}s: {listed}), so "
        "no private zone is ever asked", steps[0] if len(steps) == 1 else None,
        f"forward the domain of {host} to the network whose private zone holds it (a {kind} "
        "step whose domain ends the hostname)",
    )
