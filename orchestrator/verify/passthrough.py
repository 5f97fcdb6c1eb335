"""The end of a southbound path whose service attachment fronts an internal passthrough Network
Load Balancer with managed instance groups behind it (plans/psc-ilb-mig.yaml):

    forwarding-rule → backend-service → backend-health → firewall

Google's rules each hop applies:
- a passthrough rule serves its `ports` (up to five) or all ports (ForwardingRule.ports);
- "Backend services with instance group or zonal NEG backends must have a health check"
  (BackendService.healthChecks), and the load balancer sends new connections to healthy VMs,
  "When all backend VMs are unhealthy, the load balancer distributes new connections among all
  backends as a last resort"
  (https://cloud.google.com/load-balancing/docs/internal/int-netlb-traffic-distribution): so no
  healthy VM is a warning, not a verdict, and what getHealth says is the evidence;
- the connection reaches a VM as it came, from the service attachment's NAT subnet, so the VMs'
  firewall must admit that subnet on the port.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from orchestrator.verify import firewall, groups, routing
from orchestrator.verify.hops import HopSpec
from orchestrator.verify.live import Unreadable, last
from orchestrator.verify.report import Hop


def is_passthrough(rule: dict[str, Any]) -> bool:
    return rule.get("loadBalancingScheme") == "INTERNAL" and bool(rule.get("backendService"))


def _forwarding_rule(w: Any) -> Hop:
    ctx, rule, req = w.ctx, w.found["forwarding_rule"], w.req
    step = ctx.step_at(rule["selfLink"])
    ports = ",".join(rule.get("ports", [])) or ("all" if rule.get("allPorts") else "none")
    evidence = (f"{rule['name']}: INTERNAL passthrough, {rule.get('IPAddress')}:{ports}, backend "
                f"service {last(rule['backendService'])}")
    if not routing.serves_port(req.port, rule):
        return Hop("forwarding-rule", "broken", f"{evidence}; the target calls port {req.port}",
                   step, f"serve port {req.port}, or call the port the rule serves")
    backend = ctx.live.compute(rule["backendService"])
    if backend is None:
        return Hop("forwarding-rule", "broken", f"{evidence}, which is not there", step,
                   "point the rule at the backend service")
    w.found["backend_service"] = backend
    if req.scheme == "https":
        # The VMs' own certificate is beyond what Google's APIs show.
        return Hop("forwarding-rule", "warning", f"{evidence}; TLS is the VMs' own, which "
                   "verify cannot read", step)
    return Hop("forwarding-rule", "ok", evidence, step)


def _backend_service(w: Any) -> Hop:
    ctx, backend = w.ctx, w.found["backend_service"]
    step = ctx.step_at(backend["selfLink"])
    members = groups.instance_groups(backend)
    if not members:
        raise Unreadable(f"{backend['name']} has no instance-group backends: only those are "
                         "followed behind a passthrough load balancer")
    checks = backend.get("healthChecks") or []
    check = ctx.live.compute(checks[0]) if checks else None
    if check is None:
        return Hop("backend-service", "broken", f"{backend['name']} has no health check", step,
                   "give the backend service a health check")
    w.found.update(groups=members, health_check=check)
    return Hop("backend-service", "ok",
               f"{backend['name']} ({backend.get('loadBalancingScheme')}, "
               f"{backend.get('protocol')}) → {', '.join(last(g) for g in members)}; health "
               f"check {check['name']} ({groups.checked(check)})", step)


def _backend_health(w: Any) -> Hop:
    found = groups.health(w.ctx, w.found["backend_service"], w.found["groups"])
    w.found["vms"] = found.vms or None
    return groups.health_hop(w.ctx, w.found["health_check"], found, "VMs", (
        "warning", "the load balancer sends each connection to an unhealthy VM as a last "
        "resort"))


def _firewall(w: Any) -> Hop:
    """PSC connections reach the VMs from the service attachment's NAT subnet."""
    ctx, port = w.ctx, w.req.port
    nat = ctx.live.compute(w.found["service_attachment"]["natSubnets"][0]) or {}
    if not nat.get("ipCidrRange"):
        raise Unreadable("the service attachment's NAT subnet could not be read")
    source = ipaddress.ip_network(nat["ipCidrRange"])
    for network, tags, group in w.found["vms"]:
        rules = firewall.ingress_rules(ctx, network)
        rule = firewall.deciding(rules, source, port, tags)  # type: ignore[arg-type]
        if rule is None or "denied" in rule:
            why = f"{rule['name']} denies it" if rule else "no rule admits it: the implied " \
                "deny drops it"
            return Hop("firewall", "broken",
                       f"the PSC NAT subnet {source} to tcp:{port} on {last(group)}'s VMs in "
                       f"{network}: {why}", firewall.rule_to_widen(ctx, rules, source),  # type: ignore[arg-type]
                       f"allow tcp:{port} from {source} to the VMs"
                       + (f" tagged {', '.join(sorted(tags))}" if tags else ""))
    return Hop("firewall", "ok", f"{rule['name']} admits the PSC NAT subnet {source} on "
               f"tcp:{port} to the VMs", ctx.step_at(rule["selfLink"]))


HOPS: tuple[HopSpec, ...] = (
    ("forwarding-rule", ("forwarding_rule",), _forwarding_rule),
    ("backend-service", ("backend_service",), _backend_service),
    ("backend-health", ("groups",), _backend_health),
    ("firewall", ("vms",), _firewall),
)
