"""Northbound paths: from a client on the internet to the Apigee instance, through an external
Application Load Balancer whose backend is a Private Service Connect NEG on the instance's
service attachment, or a MIG bridge (VMs in the peered network that forward to the instance's
address); one path per hostname the load balancer's certificates serve.

    forwarding-rule → certificate → public-dns → url-map → backend-service
    → psc-neg, or backend-health → bridge
    → envgroup
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.verify import groups, routing, tls
from orchestrator.verify.context import Context
from orchestrator.verify.hops import HopSpec, follow
from orchestrator.verify.live import Unreadable, compute_path, last, project_of
from orchestrator.verify.report import Hop, RequestPath
from orchestrator.verify.resolve import fqdn

PATTERN = "northbound"
RULE_KINDS = ("compute.global_forwarding_rule", "compute.forwarding_rule")
EXTERNAL = ("EXTERNAL_MANAGED", "EXTERNAL")


@dataclass
class Walk:
    ctx: Context
    host: str
    found: dict[str, Any] = field(default_factory=dict)


def paths(ctx: Context) -> list[RequestPath]:
    out = []
    for kind in RULE_KINDS:
        for rec in ctx.records(kind):
            try:
                rule = ctx.live.compute(rec.path)
            except Unreadable:
                continue
            if (rule is None or rule.get("loadBalancingScheme") not in EXTERNAL
                    or "/targetHttpsProxies/" not in rule.get("target", "")):
                continue
            try:
                proxy = ctx.live.compute(rule["target"])
                hosts = _hostnames(ctx, proxy or {})
            except Unreadable as exc:
                out.append(RequestPath(PATTERN, rec.step_id, hops=[
                    Hop("forwarding-rule", "unknown", str(exc), rec.step_id)]))
                continue
            if not _reaches_apigee(ctx, proxy or {}):
                continue
            for host in hosts:
                walk = Walk(ctx, host)
                walk.found.update(rule=rule, proxy=proxy)
                path = follow(RequestPath(PATTERN, f"{host} → {rec.step_id}",
                                          request=f"https://{host}/"), TO_BACKEND, walk)
                through = THROUGH_BRIDGE if walk.found.get("bridge_groups") else THROUGH_PSC
                out.append(follow(path, (*through, ENVGROUP), walk))
    return out


def _certificates(ctx: Context, proxy: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(link, cert) for link in proxy.get("sslCertificates", [])
            if (cert := ctx.live.compute(link)) is not None]


def _hostnames(ctx: Context, proxy: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for _, cert in _certificates(ctx, proxy):
        if cert.get("type") == "MANAGED":
            names += cert.get("managed", {}).get("domains", [])
        elif cert.get("certificate"):
            names += tls.parse(cert["certificate"], cert.get("subjectAlternativeNames")).names
    return list(dict.fromkeys(names))


def _reaches_apigee(ctx: Context, proxy: dict[str, Any]) -> bool:
    """Whether the load balancer's backends include a PSC NEG (the northbound pattern), so
    that other external load balancers in a plan are not taken for it."""
    url_map = ctx.live.compute(proxy.get("urlMap", "")) if proxy.get("urlMap") else None
    links = {url_map.get("defaultService", "")} if url_map else set()
    for matcher in (url_map or {}).get("pathMatchers", []):
        links.add(matcher.get("defaultService", ""))
        links.update(r.get("service", "") for r in matcher.get("pathRules", []))
    for link in filter(None, links):
        backend = ctx.live.compute(link) or {}
        for b in backend.get("backends", []):
            neg = ctx.live.compute(b.get("group", "")) if "networkEndpointGroups" in b.get(
                "group", "") else None
            if neg and neg.get("networkEndpointType") == "PRIVATE_SERVICE_CONNECT":
                return True
        if any(_bridge_endpoint(ctx, g) for g in groups.instance_groups(backend)):
            return True
    return False


def _bridge_endpoint(ctx: Context, group: str) -> str:
    """Where a group's VMs forward, if they are a MIG bridge."""
    manager = ctx.live.compute(
        compute_path(group).replace("/instanceGroups/", "/instanceGroupManagers/")) or {}
    template = ctx.live.compute(manager["instanceTemplate"]) if manager.get(
        "instanceTemplate") else None
    return groups.endpoint(template or {})


# --- the hops -------------------------------------------------------------------------------


def _forwarding_rule(w: Walk) -> Hop:
    rule = w.found["rule"]
    step = w.ctx.step_at(rule["selfLink"])
    evidence = (f"{rule['name']}: {rule.get('loadBalancingScheme')}, {rule.get('IPAddress')}:"
                f"{rule.get('portRange')}, target {last(rule.get('target', ''))}")
    if not routing.serves_port(443, rule):
        return Hop("forwarding-rule", "broken", f"{evidence}; clients call https on 443", step,
                   "serve port 443")
    return Hop("forwarding-rule", "ok", evidence, step)


def _certificate(w: Walk) -> Hop:
    ctx, host = w.ctx, w.host
    certs = _certificates(ctx, w.found["proxy"])
    for link, cert in certs:
        step = ctx.step_at(link)
        if cert.get("type") == "MANAGED":
            managed = cert.get("managed", {})
            if host not in managed.get("domains", []):
                continue
            status = managed.get("status", "")
            domain = managed.get("domainStatus", {}).get(host, "")
            evidence = f"{cert['name']}: Google-managed, {status}, {host} {domain}"
            if status == "ACTIVE" and domain == "ACTIVE":
                return Hop("certificate", "ok", evidence, step)
            if domain.startswith("FAILED") or status.startswith("FAILED"):
                return Hop("certificate", "broken", evidence, step,
                           f"point {host}'s public A record at the load balancer's address, "
                           "then Google provisions it again")
            # Google provisions it once the hostname's public record points at the load
            # balancer (https://cloud.google.com/load-balancing/docs/ssl-certificates/google-managed-certs#update-dns).
            return Hop("certificate", "warning",
                       f"{evidence}: Google issues it once {host}'s public A record points at "
                       f"{w.found['rule'].get('IPAddress')}; until then HTTPS fails", step,
                       f"point {host}'s public A record at the load balancer's address")
        parsed = tls.parse(cert.get("certificate", ""), cert.get("subjectAlternativeNames"))
        if parsed.covers(host):
            return Hop("certificate", "ok",
                       f"{cert['name']}: self-managed, names {', '.join(parsed.names)}", step)
    raise Unreadable(f"no certificate of the load balancer names {host}")


def _public_dns(w: Walk) -> Hop:
    ctx, host = w.ctx, fqdn(w.host)
    address = w.found["rule"].get("IPAddress", "")
    for project in ctx.projects():
        for zone in ctx.live.items("dns.managedZones.list", "managedZones", project=project):
            if zone.get("visibility", "public") != "public" or not (
                    host == zone["dnsName"] or host.endswith("." + zone["dnsName"])):
                continue
            rrsets = ctx.live.items("dns.resourceRecordSets.list", "rrsets", project=project,
                                    managedZone=zone["name"], name=host, type="A")
            record = next((r for r in rrsets if r.get("name") == host), None)
            zone_path = f"projects/{project}/managedZones/{zone['name']}"
            if record is None:
                return Hop("public-dns", "broken",
                           f"public zone {zone['name']} holds no A record for {host}",
                           ctx.step_at(zone_path), f"add an A record for {host}: {address}")
            step = ctx.step_at(f"{zone_path}/rrsets/{host}/A")
            if address not in record.get("rrdatas", []):
                return Hop("public-dns", "broken",
                           f"{host} → {', '.join(record.get('rrdatas', []))} in public zone "
                           f"{zone['name']}; the load balancer is at {address}", step,
                           f"point the record at {address}")
            return Hop("public-dns", "ok", f"{host} → {address} in public zone {zone['name']}",
                       step)
    raise Unreadable(f"{host} is in no public Cloud DNS zone of the plan's projects: check "
                     f"that its A record is {address}")


def _url_map(w: Walk) -> Hop:
    ctx, proxy = w.ctx, w.found["proxy"]
    url_map = ctx.live.compute(proxy.get("urlMap", ""))
    if url_map is None:
        return Hop("url-map", "broken", f"{proxy['name']}'s URL map is not there",
                   ctx.step_at(proxy["selfLink"]), "point the target proxy at the URL map")
    step = ctx.step_at(url_map["selfLink"])
    service, evidence = routing.route(url_map, w.host, "/")
    backend = ctx.live.compute(service) if service else None
    if backend is None:
        return Hop("url-map", "broken", evidence, step,
                   f"route {w.host} to the backend service of the Apigee NEG")
    w.found["backend"] = backend
    return Hop("url-map", "ok", f"{evidence}: {backend['name']}", step)


def _backend_service(w: Walk) -> Hop:
    ctx, backend = w.ctx, w.found["backend"]
    step = ctx.step_at(backend["selfLink"])
    for b in backend.get("backends", []):
        if "networkEndpointGroups" not in b.get("group", ""):
            continue
        neg = ctx.live.compute(b.get("group", ""))
        if neg is not None and neg.get("networkEndpointType") == "PRIVATE_SERVICE_CONNECT":
            w.found["neg"] = neg
            return Hop("backend-service", "ok",
                       f"{backend['name']} ({backend.get('protocol')}) → PSC NEG {neg['name']}",
                       step)
    bridges = groups.instance_groups(backend)
    checks = backend.get("healthChecks") or []
    if bridges and not checks:
        return Hop("backend-service", "broken", f"{backend['name']}'s MIG bridge "
                   f"{', '.join(last(g) for g in bridges)} has no health check", step,
                   "give the backend service a health check")
    if bridges:
        w.found.update(bridge_groups=bridges, health_check=ctx.live.compute(checks[0]))
        return Hop("backend-service", "ok",
                   f"{backend['name']} ({backend.get('protocol')}, port name "
                   f"{backend.get('portName', 'http')}) → MIG bridge "
                   f"{', '.join(last(g) for g in bridges)}", step)
    return Hop("backend-service", "broken",
               f"{backend['name']} has no PSC NEG backend and no MIG bridge", step,
               "add the PSC NEG of the Apigee instance, or a MIG bridge, as a backend")


def _bridge_health(w: Walk) -> Hop:
    """The bridge VMs as the load balancer's health check finds them: through each VM to
    Apigee's own health endpoint. With none healthy, the load balancer has nowhere to send a
    request."""
    found = groups.health(w.ctx, w.found["backend"], w.found["bridge_groups"])
    w.found["templates"] = found.templates or None
    return groups.health_hop(w.ctx, w.found["health_check"], found, "bridge VMs", (
        "broken", "the load balancer has no VM to send requests to"))


def _bridge(w: Walk) -> Hop:
    """The bridge forwards to the instance's address over the peering: its template names the
    address (ENDPOINT), and its VMs are in the organization's peered network."""
    ctx = w.ctx
    template = w.found["templates"][0]
    step = ctx.step_at(template["selfLink"])
    endpoint = groups.endpoint(template)
    for rec in ctx.records("apigee.organization"):
        org = ctx.live.get("apigee.organizations.get", name=rec.path) or {}
        for instance in ctx.live.items("apigee.organizations.instances.list", "instances",
                                       parent=rec.path):
            if instance.get("host") != endpoint:
                continue
            instance["path"] = f"{rec.path}/instances/{instance['name']}"
            network = last(groups.template_network(ctx, template))
            peered = last(org.get("authorizedNetwork", ""))
            evidence = (f"{template['name']} forwards to {endpoint}, instance "
                        f"{instance['name']}, from network {network}")
            if network != peered:
                return Hop("bridge", "broken", f"{evidence}; the organization is peered with "
                           f"{peered or 'no network'}", step,
                           f"put the bridge VMs in {peered or 'the peered network'}")
            w.found["instance"] = instance
            return Hop("bridge", "ok", f"{evidence}, peered with the organization", step)
    return Hop("bridge", "broken", f"{template['name']} forwards to {endpoint or 'nothing'} "
               "(its ENDPOINT metadata), which is no Apigee instance's address", step,
               "set the template's ENDPOINT metadata to the instance's host")


def _psc_neg(w: Walk) -> Hop:
    ctx, neg = w.ctx, w.found["neg"]
    step = ctx.step_at(neg["selfLink"])
    target = compute_path(neg.get("pscTargetService", ""))
    instance, instance_step = _instance_for(ctx, target)
    status = (neg.get("pscData") or {}).get("pscConnectionStatus", "")
    evidence = f"{neg['name']} → {target}: {status}"
    if instance is None:
        return Hop("psc-neg", "broken", f"{evidence}, which is no Apigee instance's service "
                   "attachment", step, "target the instance's serviceAttachment")
    w.found["instance"] = instance
    evidence += f" (instance {instance['name']})"
    if status in ("PENDING", "REJECTED", "CLOSED"):
        return Hop("psc-neg", "broken", evidence, instance_step,
                   f"add project {project_of(neg)} to the instance's consumerAcceptList")
    if status != "ACCEPTED":
        raise Unreadable(f"{evidence}: not connected yet")
    return Hop("psc-neg", "ok", evidence, step)


def _instance_for(ctx: Context, attachment: str) -> tuple[dict[str, Any] | None, str | None]:
    for rec in ctx.records("apigee.organization"):
        for instance in ctx.live.items("apigee.organizations.instances.list", "instances",
                                       parent=rec.path):
            if compute_path(instance.get("serviceAttachment", "")) == attachment:
                path = f"{rec.path}/instances/{instance['name']}"
                instance["path"] = path
                return instance, ctx.step_at(path)
    return None, None


def _envgroup(w: Walk) -> Hop:
    """Apigee routes a request by its host to the environment group that lists it, then to
    the group's environments attached to the instance; an unknown host gets 404."""
    ctx, host, instance = w.ctx, w.host, w.found["instance"]
    org = instance["path"].rsplit("/instances/", 1)[0]
    groups = ctx.live.items("apigee.organizations.envgroups.list", "environmentGroups",
                            parent=org)
    group = next((g for g in groups if host in g.get("hostnames", [])), None)
    if group is None:
        steps = ctx.steps_under(org, "apigee.envgroup")
        listed = "; ".join(f"{g['name']}: {', '.join(g.get('hostnames', []))}" for g in groups)
        return Hop("envgroup", "broken",
                   f"no environment group of {org} lists {host} ({listed or 'no groups'}): "
                   "Apigee answers 404", steps[0] if len(steps) == 1 else None,
                   f"add {host} to the environment group's hostnames")
    group_path = f"{org}/envgroups/{group['name']}"
    envs = {a.get("environment") for a in ctx.live.items(
        "apigee.organizations.envgroups.attachments.list", "environmentGroupAttachments",
        parent=group_path)}
    served = {a.get("environment") for a in ctx.live.items(
        "apigee.organizations.instances.attachments.list", "attachments",
        parent=instance["path"])}
    both = sorted(e for e in envs & served if e)
    if not both:
        grouped = ", ".join(sorted(e for e in envs if e)) or "none"
        running = ", ".join(sorted(e for e in served if e)) or "none"
        return Hop("envgroup", "broken",
                   f"group {group['name']} lists {host}; its environments ({grouped}) are not "
                   f"attached to instance {instance['name']} (it runs: {running})",
                   ctx.step_at(group_path),
                   "attach an environment of the group to the instance")
    return Hop("envgroup", "ok", f"group {group['name']} lists {host}; environment "
               f"{', '.join(both)} runs on instance {instance['name']}", ctx.step_at(group_path))


# To the backend service; then a PSC NEG, or a MIG bridge, to the instance; then the
# environment group.
TO_BACKEND: tuple[HopSpec, ...] = (
    ("forwarding-rule", ("rule",), _forwarding_rule),
    ("certificate", ("proxy",), _certificate),
    ("public-dns", ("rule",), _public_dns),
    ("url-map", ("proxy",), _url_map),
    ("backend-service", ("backend",), _backend_service),
)
THROUGH_PSC: tuple[HopSpec, ...] = (("psc-neg", ("neg",), _psc_neg),)
THROUGH_BRIDGE: tuple[HopSpec, ...] = (
    ("backend-health", ("bridge_groups", "health_check"), _bridge_health),
    ("bridge", ("templates",), _bridge),
)
ENVGROUP: HopSpec = ("envgroup", ("instance",), _envgroup)
