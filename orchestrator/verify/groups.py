"""Managed instance groups behind a backend service: their VMs' health as Google's health
checks see it (getHealth), and where those VMs are (their template's network and tags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.verify.context import Context
from orchestrator.verify.live import Unreadable, compute_path, last
from orchestrator.verify.report import Hop

# Where Google's health-check probes come from
# (https://cloud.google.com/load-balancing/docs/health-check-concepts#ip-ranges).
PROBE_RANGES = ("35.191.0.0/16", "130.211.0.0/22")


@dataclass
class Health:
    healthy: int = 0
    total: int = 0
    vms: list[tuple[str, frozenset[str], str]] = field(default_factory=list)  # network, tags,
    # group
    templates: list[dict[str, Any]] = field(default_factory=list)
    unstable: Hop | None = None  # a group still making its VMs: nothing to judge yet


def instance_groups(backend: dict[str, Any]) -> list[str]:
    return [b["group"] for b in backend.get("backends", [])
            if "/instanceGroups/" in b.get("group", "")]


def checked(check: dict[str, Any]) -> str:
    """"TCP port 80": what a health check probes."""
    sub = next((v for k, v in check.items() if k.endswith("HealthCheck") and isinstance(v, dict)),
               {})
    return f"{check.get('type', '')} port {sub.get('port', '?')}"


def health(ctx: Context, backend: dict[str, Any], groups: list[str]) -> Health:
    region = last(backend.get("region", ""))
    project = compute_path(backend["selfLink"]).split("/")[1]
    out = Health()
    for group in groups:
        manager_path = compute_path(group).replace("/instanceGroups/", "/instanceGroupManagers/")
        manager = ctx.live.compute(manager_path)
        if manager is not None and not (manager.get("status") or {}).get("isStable"):
            # Nothing to judge yet, and nothing found for the hops after.
            return Health(unstable=Hop(
                "backend-health", "unknown", f"{manager['name']}'s VMs are still being made: "
                "verify again once the group is stable", ctx.step_at(manager_path)))
        template = ctx.live.compute(manager.get("instanceTemplate", "")) if manager else None
        if template is not None:
            out.templates.append(template)
            tags = (template.get("properties", {}).get("tags") or {}).get("items", [])
            out.vms.append((template_network(ctx, template), frozenset(tags), group))
        method = ("compute.regionBackendServices.getHealth" if region
                  else "compute.backendServices.getHealth")
        scope = {"region": region} if region else {}
        found = ctx.live.get(method, project=project, backendService=backend["name"],
                             body={"group": group}, **scope) or {}
        states = [s.get("healthState") for s in found.get("healthStatus", [])]
        out.healthy += states.count("HEALTHY")
        out.total += len(states)
    return out


def template_network(ctx: Context, template: dict[str, Any]) -> str:
    """The network (a compute path) a template's VMs are in: its first interface's, or that of
    its subnetwork."""
    iface = (template.get("properties", {}).get("networkInterfaces") or [{}])[0]
    network = iface.get("network", "")
    if not network and iface.get("subnetwork"):
        network = (ctx.live.compute(iface["subnetwork"]) or {}).get("network", "")
    if not network:
        raise Unreadable(f"the network of {template.get('name')}'s VMs could not be read")
    return compute_path(network)


def endpoint(template: dict[str, Any]) -> str:
    """Where a MIG bridge forwards: its template's ENDPOINT metadata, as Google's Apigee
    provisioning passes the instance's host to the bridge VMs."""
    items = (template.get("properties", {}).get("metadata") or {}).get("items", [])
    return next((i.get("value", "") for i in items if i.get("key") == "ENDPOINT"), "")


def health_hop(ctx: Context, check: dict[str, Any], found: Health, what: str,
               none_healthy: tuple[str, str]) -> Hop:
    """The backend-health hop from what getHealth said of the groups' `what` ("VMs");
    `none_healthy`: its status, and what follows for traffic, when no VM is healthy."""
    if found.unstable is not None:
        return found.unstable
    step = ctx.step_at(check["selfLink"])
    evidence = (f"{found.healthy} of {found.total} {what} HEALTHY by {check['name']} "
                f"({checked(check)})")
    if found.total == 0:
        return Hop("backend-health", "broken", f"{evidence}: the groups have no VMs", step,
                   "give the managed instance group a target size above 0")
    if found.healthy == 0:
        status, follows = none_healthy
        return Hop("backend-health", status, f"{evidence}: {follows}", step,
                   probe_fix(check, found))
    return Hop("backend-health", "ok" if found.healthy == found.total else "warning",
               evidence, step)


def probe_fix(check: dict[str, Any], found: Health) -> str:
    tags = sorted({t for _, ts, _ in found.vms for t in ts})
    return (f"allow {checked(check)} from {' and '.join(PROBE_RANGES)} to the VMs"
            + (f" (tagged {', '.join(tags)})" if tags else "") + ", and make them serve it")
