"""Which VPC firewall rule decides an ingress packet: the network's enabled ingress rules that
apply to the destination, by priority (a deny before an allow at equal priority), else the
implied deny ("Every VPC network has two implied firewall rules ... The implied deny ingress
rule", https://cloud.google.com/firewall/docs/firewalls#default_firewall_rules).

A rule applies to an instance when it names no targets, or one of the instance's network tags
("If you omit the target parameter, the rule applies to all instances in the network",
https://cloud.google.com/firewall/docs/firewalls#rule_assignment).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

IMPLIED_DENY = {"name": "default-ingress-deny", "priority": 65535, "implied": True}


def admits(entries: list[dict[str, Any]], protocol: str, port: int) -> bool:
    """Whether a rule's `allowed` or `denied` entries cover the protocol and port."""
    for entry in entries:
        if entry.get("IPProtocol", "").lower() not in (protocol.lower(), "all"):
            continue
        ports = entry.get("ports")
        if not ports:
            return True
        for spec in ports:
            low, _, high = str(spec).partition("-")
            if int(low) <= port <= int(high or low):
                return True
    return False


def _targets(rule: dict[str, Any], tags: set[str] | None) -> bool:
    if tags is None:  # not an instance (a forwarding rule): every rule may apply
        return True
    named = rule.get("targetTags") or []
    if rule.get("targetServiceAccounts"):
        return False
    return not named or bool(tags.intersection(named))


def deciding_rule(cloud: Cloud, network: str, source: str, protocol: str, port: int,
                  tags: set[str] | None = None) -> dict[str, Any]:
    """The rule (a firewall's body, or IMPLIED_DENY) that decides a packet from `source` to
    `port` in `network` (a compute path); `tags`: the destination instance's network tags."""
    ip = ipaddress.ip_address(source)
    rules = sorted(
        (r.body for r in cloud.store.referrers("compute", network)
         if r.collection == "firewalls" and r.body.get("direction", "INGRESS") == "INGRESS"
         and not r.body.get("disabled")),
        key=lambda b: (b.get("priority", 1000), "allowed" in b))
    for rule in rules:
        if (_targets(rule, tags)
                and any(ip in ipaddress.ip_network(r) for r in rule.get("sourceRanges", []))
                and admits(rule.get("allowed") or rule.get("denied") or [], protocol, port)):
            return rule
    return IMPLIED_DENY


def allowed(rule: dict[str, Any]) -> bool:
    return "allowed" in rule
