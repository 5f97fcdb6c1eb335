"""Network Management (v1): connectivity tests, answered by analysing the emulator's own
configuration as Google's analysis does, with Google's step states and drop causes (the
`Step`, `DropInfo` and `DeliverInfo` enums of the discovery document).

A test is analysed when it is created and when it is rerun (`reachabilityDetails.verifyTime`
says when), not when it is read: as on Google, a result is a snapshot.

Traced:
- a source address in a VPC network to an internal Application Load Balancer's forwarding rule
  (INTERNAL_MANAGED), through its proxy to a serverless NEG backend, which is where Google's
  analysis stops ("Cloud Run as destination: not supported"; the trace ends `DELIVER` to
  `SERVERLESS_NEG`);
- a source address in a VPC network to an address in another network, over the dynamic route
  Cloud Router learned (`APPLY_ROUTE`, next hop a VPN tunnel), the tunnel (`ARRIVE_AT_VPN_TUNNEL`;
  down: DROP `ROUTE_NEXT_HOP_VPN_TUNNEL_NOT_ESTABLISHED`), the far network's subnet route and
  ingress firewall rules (unless `bypassFirewallChecks`; DROP `FIREWALL_RULE`), to the address:
  nothing the emulator knows listens at an address (it has no VMs), so the trace ends DROP
  `UNKNOWN_INTERNAL_ADDRESS` ("Destination internal address cannot be resolved to a known
  target"), after the hops it crossed.
Anything else is answered `UNDETERMINED` with an `ABORT` step of cause `UNSUPPORTED`: the
emulator does not claim a result it does not compute.

Google's rules applied, from https://cloud.google.com/network-intelligence-center/docs/connectivity-tests/concepts/overview
and the load balancers' documentation: the source address must lie in a subnet of the source
network (else ABORT `NO_SOURCE_GCP_NETWORK_LOCATION`); the rule must serve the port (else DROP
`FORWARDING_RULE_MISMATCH`); an internal Application Load Balancer needs an active proxy-only
subnet in its region and network (else DROP `LOAD_BALANCER_HAS_NO_PROXY_SUBNET`); a backend
service without backends drops (`FORWARDING_RULE_NO_INSTANCES`).
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any

from provision_emulator import errors, formats, generic
from provision_emulator.apis import compute, firewalls, routers, vpn
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.cloud import Cloud

TESTS = "projects.locations.global.connectivityTests"


class NetworkManagementRules(ApiRules):
    def resource_id(self, call: Call, coll: Collection, body: dict[str, Any]) -> str:
        rid = call.arg("testId")
        if not rid:
            raise errors.invalid("testId must be set.")
        return rid


RULES = NetworkManagementRules("networkmanagement")


@RULES.on_create(TESTS)
def _analysed(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    body.setdefault("protocol", "TCP")
    body["reachabilityDetails"] = analyse(cloud, body, call.now)


@RULES.handler("networkmanagement.projects.locations.global.connectivityTests.rerun")
def rerun(cloud: Cloud, call: Call) -> dict[str, Any]:
    coll = generic.collection(call)
    test = generic.existing(cloud, call, call.path, coll)
    body = dict(test.body)
    body["reachabilityDetails"] = analyse(cloud, body, call.now)
    body["updateTime"] = formats.rfc3339(call.now)
    return generic.commit(cloud, call, coll, call.path, effect="put", payload=body)


def analyse(cloud: Cloud, test: dict[str, Any], now: float) -> dict[str, Any]:
    trace = Trace(cloud, test)
    with contextlib.suppress(Stop):
        trace.run()
    return {
        "result": trace.result,
        "verifyTime": formats.rfc3339(now),
        "traces": [{"endpointInfo": trace.endpoint_info(), "steps": trace.steps,
                    "forwardTraceId": 1}],
    }


class Stop(Exception):
    """The trace reached a final state."""


class Trace:
    def __init__(self, cloud: Cloud, test: dict[str, Any]) -> None:
        self.cloud = cloud
        self.source = test.get("source") or {}
        self.destination = test.get("destination") or {}
        self.protocol = test.get("protocol", "TCP")
        self.bypass_firewalls = bool(test.get("bypassFirewallChecks"))
        self.steps: list[dict[str, Any]] = []
        self.result = "UNDETERMINED"

    def endpoint_info(self) -> dict[str, Any]:
        rule = self._get(self.destination.get("forwardingRule", "")) or {}
        out = {
            "sourceIp": self.source.get("ipAddress"),
            "destinationIp": self.destination.get("ipAddress") or rule.get("IPAddress"),
            "protocol": self.protocol,
            "destinationPort": self.destination.get("port"),
            "sourceNetworkUri": self.source.get("network"),
            "destinationNetworkUri": self.destination.get("network") or rule.get("network"),
        }
        return {k: v for k, v in out.items() if v is not None}

    def _get(self, link: str) -> dict[str, Any] | None:
        if not link:
            return None
        res = self.cloud.store.get("compute", compute_path(link))
        return dict(res.body) if res is not None else None

    def _step(self, state: str, project: str = "", **info: Any) -> None:
        step: dict[str, Any] = {"state": state, "causesDrop": state == "DROP"}
        if project:
            step["projectId"] = project
        step.update(info)
        self.steps.append(step)

    def _final(self, state: str, result: str, project: str = "", **info: Any) -> None:
        self._step(state, project, **info)
        self.result = result
        raise Stop

    def run(self) -> None:
        rule_link = self.destination.get("forwardingRule", "")
        rule = self._get(rule_link)
        if not rule_link and self.destination.get("ipAddress") and self.source.get("network"):
            self._start(compute_path(self.source["network"]))
            self._to_address()
        if not rule_link or rule is None or rule.get("loadBalancingScheme") != "INTERNAL_MANAGED":
            self._final("ABORT", "UNDETERMINED", abort={"cause": "UNSUPPORTED"})
        self._start(compute_path(self.source.get("network") or rule.get("network", "")))
        rule_project = compute_path(rule_link).split("/")[1]
        port = int(self.destination.get("port") or 0)
        info = {"displayName": rule["name"], "uri": compute.self_link(compute_path(rule_link)),
                "matchedProtocol": self.protocol, "vip": rule.get("IPAddress"),
                "target": rule.get("target"), "networkUri": rule.get("network"),
                "region": compute.region_of(compute_path(rule_link)),
                "matchedPortRange": rule.get("portRange", "")}
        if self.protocol != rule.get("IPProtocol", "TCP") or not serves(rule, port):
            self._final("DROP", "UNREACHABLE", rule_project, drop={
                "cause": "FORWARDING_RULE_MISMATCH", "resourceUri": info["uri"]})
        self._step("APPLY_FORWARDING_RULE", rule_project, forwardingRule=info)
        self._step("ARRIVE_AT_INTERNAL_LOAD_BALANCER", rule_project)
        region = compute.region_of(compute_path(rule_link))
        proxy_subnet = self._proxy_only_subnet(compute_path(rule.get("network", "")), region)
        if proxy_subnet is None:
            self._final("DROP", "UNREACHABLE", rule_project, drop={
                "cause": "LOAD_BALANCER_HAS_NO_PROXY_SUBNET", "resourceUri": info["uri"]})
        self._step("PROXY_CONNECTION", rule_project, proxyConnection={
            "protocol": self.protocol, "oldSourceIp": self.source.get("ipAddress"),
            "oldDestinationIp": rule.get("IPAddress"), "oldDestinationPort": port,
            "newSourceIp": _first_host(proxy_subnet["ipCidrRange"]),
            "subnetUri": compute.self_link(proxy_subnet["path"]),
            "networkUri": rule.get("network")})
        self._backend(rule, rule_project)

    def _start(self, network: str) -> None:
        project = network.split("/")[1]
        source_subnet = self._subnet_holding(network, self.source.get("ipAddress", ""))
        if source_subnet is None:
            self._final("ABORT", "UNDETERMINED", project,
                        abort={"cause": "NO_SOURCE_GCP_NETWORK_LOCATION",
                               "ipAddress": self.source.get("ipAddress")})
        self._step("START_FROM_PRIVATE_NETWORK", project, network={
            "displayName": network.rsplit("/", 1)[-1], "uri": compute.self_link(network),
            "matchedIpRange": source_subnet["ipCidrRange"],
            "matchedSubnetUri": compute.self_link(source_subnet["path"])})
        if not self.bypass_firewalls:
            self._step("APPLY_EGRESS_FIREWALL_RULE", project, firewall={
                "displayName": "default-egress-allow", "direction": "EGRESS", "action": "ALLOW",
                "priority": 65535, "firewallRuleType": "IMPLIED_VPC_FIREWALL_RULE",
                "networkUri": compute.self_link(network)})

    def _to_address(self) -> None:
        network = compute_path(self.source["network"])
        project = network.split("/")[1]
        address = self.destination["ipAddress"]
        if self._subnet_holding(network, address) is not None:
            self._final("ABORT", "UNDETERMINED", project, abort={"cause": "UNSUPPORTED"})
        route = self._dynamic_route(network, address)
        if route is None:
            self._final("DROP", "UNREACHABLE", project, drop={
                "cause": "NO_ROUTE", "resourceUri": compute.self_link(network),
                "destinationIp": address})
        tunnel_path = compute_path(route["nextHopVpnTunnel"])
        self._step("APPLY_ROUTE", project, route={
            "routeType": "DYNAMIC", "nextHopType": "NEXT_HOP_VPN_TUNNEL",
            "destIpRange": route["destRange"], "nextHop": route["nextHopVpnTunnel"],
            "nextHopUri": route["nextHopVpnTunnel"], "networkUri": compute.self_link(network),
            "priority": route.get("priority"), "region": compute.region_of(tunnel_path)})
        tunnel = self.cloud.store.get("compute", tunnel_path)
        assert tunnel is not None
        if vpn.tunnel_status(self.cloud, tunnel) != vpn.ESTABLISHED:
            self._final("DROP", "UNREACHABLE", project, drop={
                "cause": "ROUTE_NEXT_HOP_VPN_TUNNEL_NOT_ESTABLISHED",
                "resourceUri": compute.self_link(tunnel_path)})
        self._step("ARRIVE_AT_VPN_TUNNEL", project, vpnTunnel={
            "displayName": tunnel.body["name"], "uri": compute.self_link(tunnel_path),
            "sourceGateway": tunnel.body.get("vpnGateway"),
            "remoteGateway": tunnel.body.get("peerGcpGateway"),
            "region": compute.region_of(tunnel_path), "routingType": "DYNAMIC"})
        far = vpn.peer_tunnel(self.cloud, tunnel)
        gateway = self._get(str(tunnel.body.get("peerGcpGateway") or "")) or {}
        far_network = compute_path(gateway.get("network", ""))
        far_project = far_network.split("/")[1] if far_network else project
        self._step("ARRIVE_AT_VPN_GATEWAY", far_project, vpnGateway={
            "displayName": gateway.get("name", ""),
            "uri": str(tunnel.body.get("peerGcpGateway") or ""),
            "networkUri": gateway.get("network", ""),
            "vpnTunnelUri": compute.self_link(far.path) if far is not None else "",
            "region": compute.region_of(compute_path(str(tunnel.body.get("peerGcpGateway")
                                                         or "")))})
        subnet = self._subnet_holding(far_network, address)
        if subnet is None:
            self._final("DROP", "UNREACHABLE", far_project, drop={
                "cause": "NO_ROUTE", "resourceUri": compute.self_link(far_network),
                "destinationIp": address})
        self._step("APPLY_ROUTE", far_project, route={
            "routeType": "SUBNET", "nextHopType": "NEXT_HOP_NETWORK",
            "destIpRange": subnet["ipCidrRange"], "networkUri": compute.self_link(far_network),
            "nextHopNetworkUri": compute.self_link(far_network)})
        if not self.bypass_firewalls:
            self._ingress(far_network, far_project)
        self._final("DROP", "UNREACHABLE", far_project, drop={
            "cause": "UNKNOWN_INTERNAL_ADDRESS", "destinationIp": address})

    def _dynamic_route(self, network: str, address: str) -> dict[str, Any] | None:
        """The most specific route Cloud Router learned into `network` that holds `address`
        (the lowest priority number among equals)."""
        ip = ipaddress.ip_address(address)
        learned = [r for res in self.cloud.store.referrers("compute", network)
                   if res.collection == "routers"
                   for r in routers.learned_routes(self.cloud, res)
                   if ip in ipaddress.ip_network(r["destRange"])]
        if not learned:
            return None
        return min(learned, key=lambda r: (-ipaddress.ip_network(r["destRange"]).prefixlen,
                                           r.get("priority", 100)))

    def _ingress(self, network: str, project: str) -> None:
        """The far network's ingress rules decide (firewalls.py)."""
        rule = firewalls.deciding_rule(
            self.cloud, network, self.source.get("ipAddress", "0.0.0.0"), self.protocol,
            int(self.destination.get("port") or 0))
        info = {"displayName": rule["name"], "direction": "INGRESS",
                "action": "ALLOW" if firewalls.allowed(rule) else "DENY",
                "priority": rule.get("priority", 1000),
                "firewallRuleType": ("IMPLIED_VPC_FIREWALL_RULE" if rule.get("implied")
                                     else "VPC_FIREWALL_RULE"),
                "networkUri": compute.self_link(network)}
        if not firewalls.allowed(rule):
            self._final("DROP", "UNREACHABLE", project, firewall=info,
                        drop={"cause": "FIREWALL_RULE"})
        self._step("APPLY_INGRESS_FIREWALL_RULE", project, firewall=info)

    def _backend(self, rule: dict[str, Any], project: str) -> None:
        proxy = self._get(rule.get("target", "")) or {}
        url_map = self._get(proxy.get("urlMap", "")) or {}
        service_link = url_map.get("defaultService", "")
        service = self._get(service_link) or {}
        groups = [b.get("group", "") for b in service.get("backends", [])]
        if not groups:
            self._final("DROP", "UNREACHABLE", project, drop={
                "cause": "FORWARDING_RULE_NO_INSTANCES",
                "resourceUri": compute.self_link(compute_path(service_link))})
        neg_link = groups[0]
        neg = self._get(neg_link) or {}
        self._step("ANALYZE_LOAD_BALANCER_BACKEND", project, loadBalancerBackendInfo={
            "name": neg.get("name", ""),
            "backendServiceUri": compute.self_link(compute_path(service_link)),
            "networkEndpointGroupUri": compute.self_link(compute_path(neg_link))})
        if neg.get("networkEndpointType") != "SERVERLESS":
            self._final("ABORT", "UNDETERMINED", project, abort={"cause": "UNSUPPORTED"})
        uri = compute.self_link(compute_path(neg_link))
        self._final("DELIVER", "REACHABLE", project, deliver={
            "target": "SERVERLESS_NEG", "resourceUri": uri}, serverlessNeg={"negUri": uri})

    def _subnets(self, network: str, region: str | None = None) -> list[dict[str, Any]]:
        project = network.split("/")[1]
        out = []
        for res in self.cloud.store.referrers("compute", network):
            if res.collection != "subnetworks" or not res.path.startswith(f"projects/{project}"):
                continue
            if region is None or compute.region_of(res.path) == region:
                out.append({**res.body, "path": res.path})
        return out

    def _subnet_holding(self, network: str, address: str) -> dict[str, Any] | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        return next((s for s in self._subnets(network)
                     if ip in ipaddress.ip_network(s["ipCidrRange"])), None)

    def _proxy_only_subnet(self, network: str, region: str | None) -> dict[str, Any] | None:
        return next((s for s in self._subnets(network, region)
                     if s.get("purpose") == "REGIONAL_MANAGED_PROXY"
                     and s.get("role", "ACTIVE") == "ACTIVE"), None)


def compute_path(link: str) -> str:
    return "projects/" + link.split("projects/", 1)[1] if "projects/" in link else link


def serves(rule: dict[str, Any], port: int) -> bool:
    if rule.get("allPorts"):
        return True
    if rule.get("ports"):
        return str(port) in rule["ports"]
    low, _, high = (rule.get("portRange") or "").partition("-")
    return bool(low) and int(low) <= port <= int(high or low)


def _first_host(cidr: str) -> str:
    return str(next(ipaddress.ip_network(cidr).hosts()))
