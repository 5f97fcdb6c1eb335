"""Which of a network's VPC firewall rules decides an ingress connection: its enabled ingress
rules that apply to the destination, by priority (the lowest number first; at equal priority,
deny before allow), then the implied deny
(https://cloud.google.com/firewall/docs/firewalls#priority_order_for_firewall_rules). A rule
applies to an instance that carries one of its target tags, or to every instance when it names
none (https://cloud.google.com/firewall/docs/firewalls#rule_assignment)."""

from __future__ import annotations

import ipaddress
from typing import Any

from orchestrator.verify import routing
from orchestrator.verify.context import Context
from orchestrator.verify.live import compute_path


def ingress_rules(ctx: Context, network: str) -> list[dict[str, Any]]:
    """The network's enabled ingress rules (`network` a compute path), in the order they
    decide."""
    project = network.split("/")[1]
    rules = [r for r in ctx.live.items("compute.firewalls.list", "items", project=project)
             if compute_path(r.get("network", "")) == network
             and r.get("direction", "INGRESS") == "INGRESS" and not r.get("disabled")]
    rules.sort(key=lambda r: (r.get("priority", 1000), "allowed" in r))
    return rules


def matches(rule: dict[str, Any], source: ipaddress.IPv4Network, port: int,
            tags: frozenset[str] | None = None) -> bool:
    """Whether the rule covers tcp:`port` from all of `source`, for an instance with `tags`
    (None: whatever the destination, as for a range of a network)."""
    if tags is not None and (rule.get("targetServiceAccounts") or (
            rule.get("targetTags") and not tags.intersection(rule["targetTags"]))):
        return False
    if not any(source.subnet_of(ipaddress.ip_network(s))  # type: ignore[arg-type]
               for s in rule.get("sourceRanges", [])):
        return False
    for entry in rule.get("allowed") or rule.get("denied") or []:
        if entry.get("IPProtocol") not in ("tcp", "all"):
            continue
        ports = entry.get("ports")
        if not ports or any(routing.port_in(port, p) for p in ports):
            return True
    return False


def deciding(rules: list[dict[str, Any]], source: ipaddress.IPv4Network, port: int,
             tags: frozenset[str] | None = None) -> dict[str, Any] | None:
    """The rule that decides, or None for the implied deny."""
    return next((r for r in rules if matches(r, source, port, tags)), None)


def rule_to_widen(ctx: Context, rules: list[dict[str, Any]],
                  source: ipaddress.IPv4Network) -> str | None:
    """The step of the rule a fix should widen: one that admits part of the way, else the
    plan's only allowing rule in the network."""
    allowing = [r for r in rules if "allowed" in r and any(
        ipaddress.ip_network(s).overlaps(source) for s in r.get("sourceRanges", []))]
    planned = [r for r in rules if "allowed" in r and ctx.step_at(r["selfLink"])]
    candidates = allowing or (planned if len(planned) == 1 else [])
    return ctx.step_at(candidates[0]["selfLink"]) if candidates else None
