"""Architecture A's southbound paths: for each target of each API proxy the plan deploys, the
request from the Apigee runtime to the Cloud Run service, hop by hop, from live reads.

    deployment → dns → endpoint-attachment → service-attachment → forwarding-rule
    → reachability (Google's own analysis: a connectivity test) → tls → url-map
    → backend-service → serverless-neg → ingress, invoker, audience → path

The paths come from what is deployed (the proxy's live bundle: its targets' URLs, audiences and
TLS settings), not from anything declared for verification. Google's rules each hop applies are
cited where they are checked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from orchestrator import kinds
from orchestrator.engine.steps import target_of
from orchestrator.ledger import ResourceRecord
from orchestrator.verify import connectivity, passthrough, routing, tls
from orchestrator.verify.context import Context
from orchestrator.verify.hops import HopSpec, follow
from orchestrator.verify.live import Unreadable, compute_path, last, project_of
from orchestrator.verify.report import Hop, RequestPath
from orchestrator.verify.resolve import (
    forwarding_for,
    fqdn,
    not_forwarded,
    resolve,
    runtime_dns,
)

PATTERN = "psc-southbound"

# Cloud Run's ingress settings that admit an internal Application Load Balancer's requests:
# all three do ("Internal: ... Requests from internal Application Load Balancers",
# https://cloud.google.com/run/docs/securing/ingress#settings).
ADMITS_INTERNAL_LB = ("INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY",
                      "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER")

# Roles that grant run.routes.invoke (https://cloud.google.com/run/docs/reference/iam/roles).
INVOKER_ROLES = ("roles/run.invoker", "roles/run.servicesInvoker", "roles/run.admin",
                 "roles/run.developer", "roles/owner", "roles/editor")
EVERYONE = ("allUsers", "allAuthenticatedUsers")


@dataclass
class Request:
    """What one proxy target sends: Apigee appends the request's path suffix (what follows the
    proxy's base path) to the target URL's path; a target routed by a path prefix gets suffixes
    that begin with it, sent without it when the target strips it (`strip`)."""

    proxy_step: str
    organization: str
    target: str
    url: str
    audience: str
    service_account: str
    ssl: dict[str, Any]
    prefix: str
    strip: bool

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def base(self) -> str:
        return urlsplit(self.url).path.rstrip("/")

    @property
    def sent_prefix(self) -> str:
        return "" if self.strip else self.prefix

    @property
    def path(self) -> str:
        """The path the load balancer sees for this target's requests (their common start)."""
        return f"{self.base}{self.sent_prefix}/"


@dataclass
class Walk:
    """One path's walk: what each hop found that the next ones need."""

    ctx: Context
    req: Request
    found: dict[str, Any] = field(default_factory=dict)


def paths(ctx: Context) -> list[RequestPath]:
    out = []
    kind = kinds.get("apigee.api_proxy")
    assert kind is not None
    for rec in ctx.records(kind.name):
        name = f"{rec.step_id} ({last(rec.path)})"
        try:
            proxy = ctx.live.kind(kind, target_of(kind, rec.path, rec.spec))
        except Unreadable as exc:
            out.append(RequestPath(PATTERN, name, hops=[Hop("deployment", "unknown", str(exc),
                                                            rec.step_id)]))
            continue
        if proxy is None:
            out.append(RequestPath(PATTERN, name, hops=[Hop(
                "deployment", "broken", f"{rec.path} is not there", rec.step_id,
                f"run provision apply to make it again (step {rec.step_id})")]))
            continue
        for target in proxy.get("targets", []):
            out.append(_walk(ctx, rec, proxy, target))
    return out


def _walk(ctx: Context, rec: ResourceRecord, proxy: dict[str, Any],
          target: dict[str, Any]) -> RequestPath:
    req = Request(
        proxy_step=rec.step_id,
        organization=rec.path.split("/")[1],
        target=target["name"],
        url=target.get("url", ""),
        audience=target.get("audience", ""),
        service_account=proxy.get("serviceAccount", ""),
        ssl=target.get("sslInfo", {}),
        prefix=(target.get("pathPrefix") or "").rstrip("/"),
        strip=bool(target.get("stripPrefix")),
    )
    walk = Walk(ctx, req)
    walk.found["proxy"] = proxy
    path = follow(RequestPath(PATTERN, f"{last(rec.path)} → {req.target}",
                              request=f"{req.scheme}://{req.host}{req.path}…"), TO_PRODUCER, walk)
    rule = walk.found.get("forwarding_rule")
    behind = passthrough.HOPS if rule and passthrough.is_passthrough(rule) else TO_CLOUD_RUN
    return follow(path, (*behind, ("path", (), _path)), walk)


# --- the hops -------------------------------------------------------------------------------


def _deployment(w: Walk) -> Hop:
    proxy, step = w.found["proxy"], w.req.proxy_step
    where = (f"revision {proxy.get('revision')} in environment {proxy.get('environment')}, "
             f"state {proxy.get('state') or 'NOT_DEPLOYED'}")
    if proxy.get("state") == "PROGRESSING":
        return Hop("deployment", "unknown", f"{where}: still deploying; verify again once it is "
                   "READY", step)
    if proxy.get("state") != "READY":
        return Hop("deployment", "broken", where, step,
                   "the proxy must be deployed: see the deployment's errors in Apigee")
    if not w.req.audience:
        return Hop("deployment", "ok", f"{where}; the target sends no Google ID token", step)
    if not w.req.service_account:
        return Hop("deployment", "broken", f"{where}, deployed without a service account: "
                   "Apigee cannot mint the target's Google ID token", step,
                   "deploy the proxy with serviceAccount set")
    return Hop("deployment", "ok", f"{where}, as {w.req.service_account}", step)


def _dns(w: Walk) -> Hop:
    ctx, req = w.ctx, w.req
    live = ctx.live
    host = fqdn(req.host)
    entries = runtime_dns(live, req.organization)
    forwarded = forwarding_for(entries, host)
    if forwarded is None:
        org = live.get("apigee.organizations.get", name=f"organizations/{req.organization}")
        return not_forwarded(ctx, entries, host, not (org or {}).get("disableVpcPeering"))
    network = forwarded.network
    net_project = network.split("/")[1]
    answer = resolve(live, ctx.projects(net_project), network, host)
    zone_step = None
    if answer.zones or answer.hidden:
        project, zone = answer.zones[-1] if answer.zones else answer.hidden[0]
        zone_step = ctx.step_at(f"projects/{project}/managedZones/{zone['name']}")
    if answer.problem:
        return Hop("dns", "broken", answer.problem, zone_step,
                   f"make {host} resolve, in a private zone visible to {network}, to the "
                   "endpoint attachment's host")
    attachments = live.items("apigee.organizations.endpointAttachments.list",
                             "endpointAttachments", parent=f"organizations/{req.organization}")
    match = next((a for a in attachments if a.get("host") in answer.addresses), None)
    record_step = None
    if answer.records:
        project, zone_name, record = answer.records[-1]
        record_step = ctx.step_at(f"projects/{project}/managedZones/{zone_name}/rrsets/"
                                  f"{record['name']}/{record['type']}")
    how = " → ".join([*answer.followed, f"{', '.join(answer.addresses)}"])
    if match is None:
        hosts = ", ".join(f"{last(a['name'])}: {a.get('host')}" for a in attachments) or "none"
        attachment_steps = ctx.steps_under("", "apigee.endpoint_attachment")
        hint = f"${{{attachment_steps[0]}.host}}" if len(attachment_steps) == 1 else (
            "the endpoint attachment's host")
        return Hop("dns", "broken",
                   f"{host} resolves in {network} to {how}, which is no endpoint attachment's "
                   f"address (endpoint attachments: {hosts})",
                   record_step or zone_step, f"point the record at {hint}")
    w.found["attachment"] = match
    return Hop("dns", "ok",
               f"{host} → {how} in {network} ({forwarded.how} {forwarded.suffix}), "
               f"endpoint attachment {last(match['name'])}", record_step)


def _endpoint_attachment(w: Walk) -> Hop:
    ctx, attachment = w.ctx, w.found["attachment"]
    step = ctx.step_at(attachment["name"])
    sa_link = attachment.get("serviceAttachment", "")
    sa_step = ctx.step_at(sa_link)
    state = attachment.get("connectionState", "")
    evidence = (f"{last(attachment['name'])}: state {attachment.get('state')}, connectionState "
                f"{state}, location {attachment.get('location')}, service attachment "
                f"{compute_path(sa_link)}")
    instances = ctx.live.items("apigee.organizations.instances.list", "instances",
                               parent=f"organizations/{w.req.organization}")
    regions = sorted({i.get("location") for i in instances})
    if attachment.get("location") not in regions:
        # "the service attachment and the Apigee instance must be in the same region"
        # (Apigee's southbound PSC playbook, cause 1).
        return Hop("endpoint-attachment", "broken",
                   f"{evidence}; the organization's instances are in {', '.join(regions)}",
                   step, "create the endpoint attachment in the instance's region")
    if state in ("PENDING", "REJECTED", "CLOSED", "NEEDS_ATTENTION", "FROZEN", "UNAVAILABLE"):
        org = ctx.live.get("apigee.organizations.get",
                           name=f"organizations/{w.req.organization}") or {}
        return Hop("endpoint-attachment", "broken", evidence, sa_step or step,
                   f"accept Apigee's tenant project {org.get('apigeeProjectId')} in the "
                   "service attachment's consumerAcceptLists")
    service_attachment = ctx.live.compute(sa_link)
    if service_attachment is None:
        return Hop("endpoint-attachment", "broken",
                   f"{evidence}, which is not there", sa_step or step,
                   "point the endpoint attachment at a service attachment that exists")
    w.found["service_attachment"] = service_attachment
    if state == "ACCEPTED_LIMITED_CAPACITY":
        return Hop("endpoint-attachment", "warning",
                   f"{evidence}: accepted, but it will only serve capacity limited traffic",
                   sa_step, "the producer needs to take further actions to increase capacity "
                   "for this connection (Google's words)")
    if state != "ACCEPTED":
        return Hop("endpoint-attachment", "unknown", f"{evidence}: not yet connected", step)
    return Hop("endpoint-attachment", "ok", evidence, step)


def _service_attachment(w: Walk) -> Hop:
    ctx, sa = w.ctx, w.found["service_attachment"]
    step = ctx.step_at(sa["selfLink"])
    nat = [compute_path(s) for s in sa.get("natSubnets", [])]
    evidence = (f"{sa['name']}: targets {compute_path(sa.get('targetService', ''))}, NAT "
                f"subnets {', '.join(last(s) for s in nat) or 'none'}")
    if not nat:
        return Hop("service-attachment", "broken", evidence, step,
                   "give the service attachment a PRIVATE_SERVICE_CONNECT subnet")
    rule = ctx.live.compute(sa.get("targetService", ""))
    if rule is None:
        return Hop("service-attachment", "broken", f"{evidence}, which is not there", step,
                   "point targetService at the load balancer's forwarding rule")
    w.found["forwarding_rule"] = rule
    return Hop("service-attachment", "ok", evidence, step)


def _forwarding_rule(w: Walk) -> Hop:
    ctx, rule, req = w.ctx, w.found["forwarding_rule"], w.req
    step = ctx.step_at(rule["selfLink"])
    scheme = rule.get("loadBalancingScheme", "")
    ports = rule.get("portRange") or ",".join(rule.get("ports", [])) or "all"
    evidence = (f"{rule['name']}: {scheme}, {rule.get('IPAddress')}:{ports}, target "
                f"{last(rule.get('target', ''))}")
    if scheme != "INTERNAL_MANAGED":
        raise Unreadable(f"{evidence}: only internal Application Load Balancers "
                         "(INTERNAL_MANAGED) are followed")
    if not routing.serves_port(req.port, rule):
        return Hop("forwarding-rule", "broken", f"{evidence}; the target calls port {req.port}",
                   step, f"serve port {req.port}, or call the port the rule serves")
    target = rule.get("target", "")
    wants = "targetHttpsProxies" if req.scheme == "https" else "targetHttpProxies"
    if f"/{wants}/" not in target:
        return Hop("forwarding-rule", "broken",
                   f"{evidence}; the target calls {req.scheme}://, which needs a {wants[:-3]}y",
                   step, f"point the rule at a {wants[:-3]}y, or call it with the scheme it serves")
    # "An active proxy-only subnet is required in the region and network of an internal
    # Application Load Balancer" (https://cloud.google.com/load-balancing/docs/proxy-only-subnets).
    region, network = last(rule.get("region", "")), compute_path(rule.get("network", ""))
    subnets = ctx.live.items("compute.subnetworks.list", "items",
                             project=project_of(rule), region=region)
    proxy_only = [s for s in subnets if s.get("purpose") == "REGIONAL_MANAGED_PROXY"
                  and s.get("role", "ACTIVE") == "ACTIVE"
                  and compute_path(s.get("network", "")) == network]
    if not proxy_only:
        return Hop("forwarding-rule", "broken",
                   f"{evidence}; no active proxy-only subnet in {network}, {region}", step,
                   "add a REGIONAL_MANAGED_PROXY subnet with role ACTIVE to the network")
    proxy = ctx.live.compute(target)
    if proxy is None:
        return Hop("forwarding-rule", "broken", f"{evidence}, which is not there", step,
                   "point the rule at the target proxy")
    w.found["target_proxy"] = proxy
    return Hop("forwarding-rule", "ok",
               f"{evidence}; proxy-only subnet {proxy_only[0]['name']}", step)


# What to change when Google's analysis drops the packet, by DropInfo.cause.
DROP_FIXES = {
    "LOAD_BALANCER_HAS_NO_PROXY_SUBNET": "add an active proxy-only subnet to the rule's network "
                                         "and region",
    "FORWARDING_RULE_MISMATCH": "serve the target's protocol and port on the rule",
    "FORWARDING_RULE_NO_INSTANCES": "give the load balancer's backend service a backend",
    "FIREWALL_RULE": "allow the traffic in the network's firewall rules",
}


def _reachability(w: Walk) -> Hop:
    """Google's analysis of the hop it can trace: from a PSC NAT address (where Apigee's
    connections come from inside the producer's network) to the forwarding rule, through the
    proxy to the serverless NEG, where its traces of Cloud Run end."""
    ctx, rule, sa = w.ctx, w.found["forwarding_rule"], w.found["service_attachment"]
    step = ctx.step_at(rule["selfLink"])
    if not ctx.connectivity_tests:
        return Hop("reachability", "unknown", "not asked: connectivity tests are off", step)
    nat = ctx.live.compute(sa["natSubnets"][0]) or {}
    if not nat.get("ipCidrRange"):
        raise Unreadable(f"{sa['name']}'s NAT subnet could not be read")
    project = project_of(rule)
    source = {"ipAddress": str(next(ipaddress.ip_network(nat["ipCidrRange"]).hosts())),
              "network": nat["network"], "projectId": project_of(nat)}
    destination = {"forwardingRule": rule["selfLink"], "port": w.req.port, "projectId": project}
    key = ("reachability", rule["selfLink"], w.req.port)
    if key not in ctx.memo:
        ctx.memo[key] = connectivity.run(ctx.live, project, source, destination,
                                         keep=ctx.keep_tests)
    result, trace, final = connectivity.summary(ctx.memo[key])
    evidence = (f"connectivity test from {source['ipAddress']} (the PSC NAT subnet) to "
                f"{rule['name']}:{w.req.port}: {result} ({trace})")
    if result == "REACHABLE":
        return Hop("reachability", "ok", evidence, step)
    if result == "UNREACHABLE":
        cause = final.get("drop", {}).get("cause", "")
        return Hop("reachability", "broken", f"{evidence}, dropped: {cause}", step,
                   DROP_FIXES.get(cause, f"see Google's drop cause {cause}"))
    return Hop("reachability", "unknown",
               f"{evidence}: {final.get('abort', {}).get('cause', 'no verdict')}", step)


def _tls(w: Walk) -> Hop:
    ctx, req, proxy = w.ctx, w.req, w.found["target_proxy"]
    if req.scheme != "https":
        return Hop("tls", "warning", f"the target calls {req.url} in plain HTTP",
                   req.proxy_step, "call the load balancer over HTTPS")
    if proxy.get("certificateMap"):
        raise Unreadable(f"{proxy['name']} serves a certificate map, which this check does "
                         "not read")
    certs = []
    for link in proxy.get("sslCertificates", []):
        if "certificatemanager." in link:
            # A Certificate Manager certificate: its chain, leaf first; one issued through an
            # issuance config comes from a private CA Service pool.
            managed = ctx.live.get("certificatemanager.projects.locations.certificates.get",
                                   name=compute_path(link))
            if managed is not None and managed.get("pemCertificate"):
                private = bool((managed.get("managed") or {}).get("issuanceConfig"))
                certs.append((link, tls.parse(managed["pemCertificate"],
                                              managed.get("sanDnsnames"), private=private)))
            continue
        cert = ctx.live.compute(link)
        if cert is not None and cert.get("certificate"):
            certs.append((link, tls.parse(cert["certificate"],
                                          cert.get("subjectAlternativeNames"))))
    if not certs:
        raise Unreadable(f"{proxy['name']}'s certificates could not be read")
    link, cert = next(((lk, c) for lk, c in certs if c.covers(req.host)), certs[0])
    cert_step = ctx.step_at(link)
    names = ", ".join(cert.names)
    evidence = (f"{last(link)} names {names}, issued by {cert.issuer}"
                f"{' (self-signed)' if cert.self_signed else ''}"
                f"{' (a private CA Service pool)' if cert.private else ''}")
    ssl = req.ssl
    if not ssl.get("enforce", True) or ssl.get("ignoreValidationErrors"):
        covered = "covers" if cert.covers(req.host) else "does not cover"
        return Hop("tls", "warning",
                   f"{evidence}; it {covered} {req.host}, and the target does not enforce TLS "
                   "(SSLInfo Enforce false): the load balancer's identity is not verified",
                   req.proxy_step,
                   "enforce TLS in the target's sslInfo, with a truststore holding the issuer")
    # With Enforce, Apigee refuses self-signed certificates, hostname mismatches and untrusted
    # roots (https://cloud.google.com/apigee/docs/api-platform/system-administration/options-configuring-tls).
    if not cert.covers(req.host):
        return Hop("tls", "broken", f"{evidence}; the target calls {req.host}", cert_step,
                   f"serve a certificate whose names cover {req.host}")
    if ssl.get("trustStore"):
        return _trusted(w, cert, evidence)
    if cert.self_signed or cert.private:
        return Hop("tls", "broken",
                   f"{evidence}; the target enforces TLS with no truststore, so Apigee trusts "
                   "only public certificate authorities, and refuses this one", req.proxy_step,
                   "name a truststore that holds the certificate in the target's sslInfo, or "
                   "serve one issued by a public certificate authority")
    return Hop("tls", "warning",
               f"{evidence}; with no truststore, Apigee trusts it only if {cert.issuer} chains "
               "to a public certificate authority", req.proxy_step,
               "name a truststore holding the issuer in the target's sslInfo")


def _trusted(w: Walk, cert: tls.Certificate, evidence: str) -> Hop:
    """The target trusts what its truststore holds: `ref://NAME`, a reference of the proxy's
    environment to a keystore whose aliases hold the anchors
    (https://cloud.google.com/apigee/docs/api-platform/system-administration/options-configuring-tls)."""
    ctx, req = w.ctx, w.req
    env = f"organizations/{req.organization}/environments/{w.found['proxy'].get('environment')}"
    ref_name = str(req.ssl["trustStore"]).removeprefix("ref://")
    reference = ctx.live.get("apigee.organizations.environments.references.get",
                             name=f"{env}/references/{ref_name}")
    if reference is None:
        return Hop("tls", "broken", f"{evidence}; the target's truststore {req.ssl['trustStore']}"
                   f" is no reference of {env}", req.proxy_step,
                   f"make an apigee.reference {ref_name} to the truststore keystore")
    keystore = f"{env}/keystores/{reference.get('refers')}"
    store = ctx.live.get("apigee.organizations.environments.keystores.get", name=keystore)
    if store is None:
        return Hop("tls", "broken", f"{evidence}; reference {ref_name} names keystore "
                   f"{reference.get('refers')}, which is not there",
                   ctx.step_at(f"{env}/references/{ref_name}"), "point it at the truststore")
    anchors: list[tuple[str, x509.Certificate]] = []
    for alias in store.get("aliases", []):
        pem = ctx.live.get("apigee.organizations.environments.keystores.aliases.getCertificate",
                           name=f"{keystore}/aliases/{alias}")
        text = pem.decode() if isinstance(pem, bytes) else str(pem or "")
        anchors += [(alias, c) for c in x509.load_pem_x509_certificates(text.encode())]
    anchor = tls.anchored_by(cert.pem, [c for _, c in anchors])
    held = ", ".join(f"{a}: {c.subject.rfc4514_string()}" for a, c in anchors) or "nothing"
    if anchor is None:
        steps = ctx.steps_under(keystore + "/", "apigee.truststore_certificate")
        return Hop("tls", "broken",
                   f"{evidence}; truststore {reference.get('refers')} holds {held}, which the "
                   "certificate does not chain to: Apigee refuses it",
                   steps[0] if len(steps) == 1 else ctx.step_at(keystore),
                   f"put the certificate of {cert.issuer} in the truststore")
    return Hop("tls", "ok",
               f"{evidence}; it chains to {anchor.subject.rfc4514_string()}, which truststore "
               f"{reference.get('refers')} holds (through reference {ref_name}), and covers "
               f"{req.host}", ctx.step_at(keystore))


def _url_map(w: Walk) -> Hop:
    ctx, req, proxy = w.ctx, w.req, w.found["target_proxy"]
    url_map = ctx.live.compute(proxy.get("urlMap", ""))
    proxy_step = ctx.step_at(proxy["selfLink"])
    if url_map is None:
        return Hop("url-map", "broken", f"{proxy['name']}'s URL map is not there", proxy_step,
                   "point the target proxy at the URL map")
    step = ctx.step_at(url_map["selfLink"])
    service, evidence = routing.route(url_map, req.host, req.path)
    if service is None:
        return Hop("url-map", "broken", evidence, step,
                   f"route {req.host}{req.path} to the serverless backend service")
    backend = ctx.live.compute(service)
    if backend is None:
        return Hop("url-map", "broken", f"{evidence}: {compute_path(service)}, which is not "
                   "there", step, "route to a backend service that exists")
    w.found["backend_service"] = backend
    return Hop("url-map", "ok", f"{evidence}: {backend['name']}", step)


def _backend_service(w: Walk) -> Hop:
    ctx, backend = w.ctx, w.found["backend_service"]
    step = ctx.step_at(backend["selfLink"])
    groups = [b.get("group", "") for b in backend.get("backends", [])]
    if not groups:
        return Hop("backend-service", "broken", f"{backend['name']} has no backends", step,
                   "add the serverless NEG as a backend")
    for group in groups:
        neg = ctx.live.compute(group)
        if neg is not None and neg.get("networkEndpointType") == "SERVERLESS":
            w.found["neg"] = neg
            return Hop("backend-service", "ok",
                       f"{backend['name']} ({backend.get('protocol')}) → serverless NEG "
                       f"{neg['name']}", step)
    raise Unreadable(f"{backend['name']}'s backends are not serverless NEGs "
                     f"({', '.join(last(g) for g in groups)}): only those are followed")


def _serverless_neg(w: Walk) -> Hop:
    ctx, req, neg = w.ctx, w.req, w.found["neg"]
    step = ctx.step_at(neg["selfLink"])
    run = neg.get("cloudRun")
    if not run:
        raise Unreadable(f"{neg['name']} does not send to Cloud Run: not followed")
    mask = run.get("urlMask", "")
    service = run.get("service") or routing.url_mask_service(mask, req.host, req.path)
    how = f"service {run['service']}" if run.get("service") else f"URL mask {mask}"
    if not service:
        fix = f"make the URL mask match {req.host}{req.path}"
        if req.strip and req.prefix:
            fix += (f", or stop stripping {req.prefix} in proxy target {req.target} (a mask "
                    "that finds the service in the path needs the prefix there)")
        return Hop("serverless-neg", "broken",
                   f"{neg['name']}'s {how} does not match {req.host}{req.path}", step, fix)
    project, region = project_of(neg), last(neg.get("region", ""))
    name = f"projects/{project}/locations/{region}/services/{service}"
    found = ctx.live.get("run.projects.locations.services.get", name=name)
    if found is None:
        return Hop("serverless-neg", "broken",
                   f"{neg['name']}'s {how} sends {req.host}{req.path} to Cloud Run service "
                   f"{service}, which is not in {project}, {region}", step,
                   "make the URL mask's <service> fall on the service's name")
    w.found["service"] = found
    return Hop("serverless-neg", "ok",
               f"{neg['name']}'s {how} sends {req.host}{req.path} to {name}", step)


def _ingress(w: Walk) -> Hop:
    service = w.found["service"]
    step = w.ctx.step_at(service["name"])
    ingress = service.get("ingress", "INGRESS_TRAFFIC_ALL")
    if ingress not in ADMITS_INTERNAL_LB:
        raise Unreadable(f"{last(service['name'])}: ingress {ingress} is not one this check "
                         "knows")
    return Hop("ingress", "ok",
               f"{last(service['name'])}: ingress {ingress} admits internal Application Load "
               "Balancers", step)


def _invoker(w: Walk) -> Hop:
    ctx, req, service = w.ctx, w.req, w.found["service"]
    name = service["name"]
    member = f"serviceAccount:{req.service_account}"
    if not req.service_account:
        raise Unreadable("the proxy is deployed without a service account (see deployment)")
    policy = ctx.live.get("run.projects.locations.services.getIamPolicy", resource=name) or {}
    holders = _holders(policy)
    if member in holders or any(e in holders for e in EVERYONE):
        return Hop("invoker", "ok", f"{member} may invoke {last(name)} ({holders[member]})"
                   if member in holders else f"{last(name)} admits {', '.join(EVERYONE)}",
                   ctx.step_at(name))
    project = name.split("/")[1]
    project_policy = ctx.live.get("cloudresourcemanager.projects.getIamPolicy",
                                  resource=f"projects/{project}", body={}) or {}
    if member in _holders(project_policy):
        return Hop("invoker", "ok", f"{member} holds {_holders(project_policy)[member]} on "
                   f"project {project}")
    granted = sorted(m for m in holders)
    steps = ctx.steps_under(name + "/iam/", "run.service_iam_member")
    return Hop("invoker", "broken",
               f"{last(name)} lets {', '.join(granted) or 'nobody'} invoke it (and project "
               f"{project}, nobody more); the proxy's tokens are minted for {member}",
               steps[0] if steps else ctx.step_at(name),
               f"grant roles/run.invoker on {last(name)} to {member}")


def _holders(policy: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for binding in policy.get("bindings", []):
        if binding.get("role") in INVOKER_ROLES and not binding.get("condition"):
            for member in binding.get("members", []):
                out.setdefault(member, binding["role"])
    return out


def _audience(w: Walk) -> Hop:
    req, service = w.req, w.found["service"]
    # Cloud Run accepts a token whose audience is the service's URL or one of its custom
    # audiences (https://cloud.google.com/run/docs/configuring/custom-audiences).
    accepted = [u for u in [service.get("uri"), *service.get("urls", []),
                            *service.get("customAudiences", [])] if u]
    if req.audience in accepted or req.audience.rstrip("/") in accepted:
        return Hop("audience", "ok",
                   f"the token's audience {req.audience} is one {last(service['name'])} accepts",
                   req.proxy_step)
    return Hop("audience", "broken",
               f"the target's token audience is {req.audience or 'not set'}; "
               f"{last(service['name'])} accepts {', '.join(accepted)}: Cloud Run answers 401",
               req.proxy_step, f"set the target's audience to one of {', '.join(accepted)}")


def _path(w: Walk) -> Hop:
    req = w.req
    base = [s for s in req.base.split("/") if s]
    prefix = [s for s in req.prefix.split("/") if s]
    received = f"{req.path}…"
    vms = bool(w.found.get("groups"))
    receiver = "the VMs receive" if vms else "the service receives"
    unchanged = "" if vms else " (a URL mask passes the path on unchanged)"
    if req.strip:
        return Hop("path", "ok", f"the target strips {req.prefix or 'nothing'}: {receiver} "
                   f"{received}{unchanged}", req.proxy_step)
    if prefix and base[-len(prefix):] == prefix:
        kept = "/" + "/".join(base[: -len(prefix)]) if len(base) > len(prefix) else ""
        return Hop("path", "broken",
                   f"the proxy sends {req.prefix}/… to this target and Apigee appends it to "
                   f"the target URL's path {req.base}: {receiver} {received}",
                   req.proxy_step,
                   f"drop {req.prefix} from the target's url ({req.scheme}://{req.host}{kept})")
    return Hop("path", "ok", f"{receiver} {received}{unchanged}", req.proxy_step)


# Up to the producer's forwarding rule; then an internal Application Load Balancer to Cloud
# Run, or a passthrough load balancer to VMs (passthrough.py); then the path they receive.
TO_PRODUCER: tuple[HopSpec, ...] = (
    ("deployment", (), _deployment),
    ("dns", (), _dns),
    ("endpoint-attachment", ("attachment",), _endpoint_attachment),
    ("service-attachment", ("service_attachment",), _service_attachment),
)
TO_CLOUD_RUN: tuple[HopSpec, ...] = (
    ("forwarding-rule", ("forwarding_rule",), _forwarding_rule),
    ("reachability", ("target_proxy",), _reachability),
    ("tls", ("target_proxy",), _tls),
    ("url-map", ("target_proxy",), _url_map),
    ("backend-service", ("backend_service",), _backend_service),
    ("serverless-neg", ("neg",), _serverless_neg),
    ("ingress", ("service",), _ingress),
    ("invoker", ("service",), _invoker),
    ("audience", ("service",), _audience),
)
