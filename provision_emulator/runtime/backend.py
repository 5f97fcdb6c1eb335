"""What a request from an Apigee runtime to a private target meets, from the emulator's own
configuration: the target's name resolved as the runtime resolves it (resolver.py), the
endpoint attachment holding the address and its PSC connection, the service attachment's load
balancer reached from its NAT subnet (the connectivity-test trace of networkmanagement.py),
TLS, the URL map, the serverless NEG and the Cloud Run service, its ingress and IAM; or,
behind an internal passthrough load balancer, a VM of its instance groups (`_passthrough`).

Google's rules, as documented:
- PSC: traffic through an endpoint attachment flows only while its connection is ACCEPTED
  (ACCEPTED_LIMITED_CAPACITY serves, capacity limited) (apigee v1 discovery,
  EndpointAttachment.connectionState).
- TLS: with `<Enforce>true</Enforce>`, Apigee fails the handshake for a certificate whose
  names do not cover the host, or that no certificate of the target's truststore issued
  (https://cloud.google.com/apigee/docs/api-platform/system-administration/options-configuring-tls);
  a Certificate Manager certificate serves only once ACTIVE.
- URL maps and URL masks: as networkmanagement and the load balancers' documentation say
  (https://cloud.google.com/load-balancing/docs/url-map-concepts,
  https://cloud.google.com/load-balancing/docs/negs/serverless-neg-concepts#url_masks); the
  path is passed on unchanged.
- Cloud Run (https://cloud.google.com/run/docs/securing/ingress,
  https://cloud.google.com/run/docs/authenticating/service-to-service): every ingress setting
  admits internal Application Load Balancers; a request without an ID token for one of the
  service's audiences (its URLs, its customAudiences) is answered 401, one whose identity may
  not invoke it 403, unless allUsers may.
Not documented by Google, so marked where answered: a URL mask that maps the request to no
service, or to one that does not exist, is answered 404 here.
The service runs the hello container: it answers 200 with what it received.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from provision_emulator.apis import (
    apigee,
    compute,
    firewalls,
    health_checks,
    instance_groups,
    networkmanagement,
)
from provision_emulator.runtime import resolver

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

INVOKERS = ("roles/run.invoker", "roles/run.servicesInvoker", "roles/run.admin",
            "roles/run.developer", "roles/owner", "roles/editor")


class Unreachable(Exception):
    """No response: `cause` is "dns", "connect" or "tls"; the message says why."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


class NotModelled(Exception):
    """The configuration routes the request by something the emulator does not evaluate."""


@dataclass
class Target:
    """What the runtime sends: the URL, TLS settings, the ID token's audience and identity."""

    url: str
    enforce_tls: bool = True
    trusted: list[x509.Certificate] = field(default_factory=list)
    audience: str | None = None
    identity: str = ""


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    served_by: str  # the Cloud Run service's path, or the load balancer's


def call(cloud: Cloud, org: dict[str, Any], target: Target) -> Response:
    parts = urlsplit(target.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    answer = resolver.for_runtime(cloud, org, host)
    if answer.address is None:
        raise Unreachable("dns", f"unknown host {host}: {answer.why}")
    attachment = _attachment_at(cloud, org, answer.address)
    if attachment is None:
        raise Unreachable("connect", f"{host} resolves to {answer.address}, where no endpoint "
                                     "attachment of the organization is")
    service_attachment = cloud.store.get("compute", attachment.get("serviceAttachment", ""))
    state = apigee.connection_state(cloud, org.get("apigeeProjectId", ""),
                                    service_attachment.body if service_attachment else None)
    if state != "ACCEPTED" or service_attachment is None:
        raise Unreachable("connect", f"endpoint attachment {attachment['name']}: connection "
                                     f"{state}")
    rule_link = str(service_attachment.body.get("targetService") or "")
    rule = _get(cloud, rule_link)
    if rule.get("backendService"):
        return _passthrough(cloud, service_attachment.body, rule, parts.scheme, port,
                            parts.path or "/")
    _reach(cloud, service_attachment.body, rule_link, port)
    proxy = _get(cloud, rule.get("target", ""))
    secure = "HttpsProxies" in str(rule.get("target", ""))
    if (parts.scheme == "https") != secure:
        raise Unreachable("connect", f"{parts.scheme} to a load balancer serving "
                                     f"{'HTTPS' if secure else 'HTTP'}")
    if secure:
        _handshake(cloud, proxy, host, target)
    return _routed(cloud, proxy, host, parts.path or "/", target)


def _get(cloud: Cloud, link: str) -> dict[str, Any]:
    res = cloud.store.get("compute", networkmanagement.compute_path(link)) if link else None
    return dict(res.body) if res is not None else {}


def _attachment_at(cloud: Cloud, org: dict[str, Any], address: str) -> dict[str, Any] | None:
    prefix = f"organizations/{org['name']}/"
    return next((r.body for r in cloud.store.in_collection("apigee", apigee.ENDPOINT_ATTACHMENTS)
                 if r.path.startswith(prefix) and r.body.get("host") == address), None)


def _reach(cloud: Cloud, service_attachment: dict[str, Any], rule_link: str, port: int) -> None:
    """The load balancer, from the service attachment's NAT subnet (where PSC traffic enters
    the producer's network), traced as a connectivity test is."""
    source, subnet = _nat_address(service_attachment, cloud)
    trace = networkmanagement.Trace(cloud, {
        "source": {"ipAddress": source, "network": subnet.get("network")},
        "destination": {"forwardingRule": rule_link, "port": port}, "protocol": "TCP"})
    with contextlib.suppress(networkmanagement.Stop):  # how a trace ends
        trace.run()
    if trace.result != "REACHABLE":
        last = trace.steps[-1] if trace.steps else {}
        cause = (last.get("drop") or last.get("abort") or {}).get("cause", trace.result)
        raise Unreachable("connect", f"the load balancer {rule_link.rsplit('/', 1)[-1]} is not "
                                     f"reachable from the PSC NAT subnet: {cause}")


def _nat_address(service_attachment: dict[str, Any], cloud: Cloud) -> tuple[str, dict[str, Any]]:
    subnets = [_get(cloud, s) for s in service_attachment.get("natSubnets", [])]
    subnet = next((s for s in subnets if s), None)
    if subnet is None:
        raise Unreachable("connect", "the service attachment has no NAT subnet")
    return str(next(ipaddress.ip_network(subnet["ipCidrRange"]).hosts())), subnet


def _passthrough(cloud: Cloud, service_attachment: dict[str, Any], rule: dict[str, Any],
                 scheme: str, port: int, path: str) -> Response:
    """An internal passthrough Network Load Balancer: the connection reaches a backend VM as
    it came, from the PSC NAT address, so the VM's firewall must admit the NAT subnet. "An
    internal passthrough Network Load Balancer distributes new connections to its healthy
    backend VMs if at least one backend VM is healthy. When all backend VMs are unhealthy, the
    load balancer distributes new connections among all backends as a last resort"
    (https://cloud.google.com/load-balancing/docs/internal/int-netlb-traffic-distribution)."""
    name = rule.get("name", "")
    if not networkmanagement.serves(rule, port):
        raise Unreachable("connect", f"the load balancer {name} does not serve port {port}")
    if scheme == "https":
        raise NotModelled(f"TLS served by the VMs behind the passthrough load balancer {name}")
    service = _get(cloud, rule["backendService"])
    members = []
    for backend in service.get("backends", []):
        group = cloud.store.get("compute", networkmanagement.compute_path(backend["group"]))
        manager = instance_groups.manager_of(cloud, group) if group else None
        members += instance_groups.members(cloud, manager) if manager else []
    healthy = [m for m in members if health_checks.healthy(cloud, service, m)]
    candidates = healthy or [m for m in members if m.status == "RUNNING"]
    if not candidates:
        raise Unreachable("connect", f"no backend VM of {service.get('name')} is running")
    vm = candidates[0]
    source, _ = _nat_address(service_attachment, cloud)
    decision = firewalls.deciding_rule(cloud, vm.network, source, "tcp", port, set(vm.tags))
    if not firewalls.allowed(decision):
        raise Unreachable("connect", f"firewall rule {decision['name']} drops the connection "
                                     f"from the PSC NAT subnet ({source}) to {vm.name}:{port}")
    # The VM runs no software: it answers whatever it is asked.
    return Response(200, {"instance": vm.name, "path": path}, vm.path)


# --- TLS ------------------------------------------------------------------------------------


def _handshake(cloud: Cloud, proxy: dict[str, Any], host: str, target: Target) -> None:
    chain = _served_chain(cloud, proxy)
    if not chain:
        raise Unreachable("tls", f"{proxy.get('name')} serves no certificate")
    if not target.enforce_tls:
        return
    leaf = chain[0]
    names = _names(leaf)
    if not any(fnmatch.fnmatchcase(host.lower(), n.lower()) if n.startswith("*.")
               else host.lower() == n.lower() for n in names):
        raise Unreachable("tls", f"the certificate names {', '.join(names) or 'nothing'}, not "
                                 f"{host}")
    if not any(_issued_by(cert, anchor) or cert == anchor
               for cert in chain for anchor in target.trusted):
        issuer = leaf.issuer.rfc4514_string()
        raise Unreachable("tls", f"the certificate's issuer {issuer} is in no certificate of "
                                 "the target's truststore")


def _served_chain(cloud: Cloud, proxy: dict[str, Any]) -> list[x509.Certificate]:
    for link in proxy.get("sslCertificates") or []:
        if link.startswith("//certificatemanager.googleapis.com/"):
            res = cloud.store.get("certificatemanager",
                                  link.removeprefix("//certificatemanager.googleapis.com/"))
            managed = (res.body.get("managed") or {}) if res else {}
            if res is None or (managed and managed.get("state") != "ACTIVE"):
                continue
            pem = str(res.body.get("pemCertificate") or "")
        else:
            pem = str(_get(cloud, link).get("certificate") or "")
        if pem:
            return x509.load_pem_x509_certificates(pem.encode())
    return []


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.DNSName))


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]
        else:
            return False
    except InvalidSignature:
        return False
    return True


# --- load balancer and Cloud Run --------------------------------------------------------------


def _routed(cloud: Cloud, proxy: dict[str, Any], host: str, path: str,
            target: Target) -> Response:
    url_map = _get(cloud, proxy.get("urlMap", ""))
    backend_link = _route(url_map, host, path)
    backend = _get(cloud, backend_link)
    groups = [b.get("group", "") for b in backend.get("backends", [])]
    neg = _get(cloud, groups[0]) if groups else {}
    lb = f"load balancer {url_map.get('name', '')}"
    run_config = neg.get("cloudRun") or {}
    if neg.get("networkEndpointType") != "SERVERLESS" or not run_config:
        raise NotModelled(f"{lb} sends {host}{path} to a backend other than a Cloud Run "
                          "serverless NEG")
    name = run_config.get("service") or _masked(run_config.get("urlMask", ""), host, path)
    region = compute.region_of(networkmanagement.compute_path(groups[0]))
    project = networkmanagement.compute_path(groups[0]).split("/")[1]
    if not name:
        return Response(404, {"error": f"the URL mask of {neg['name']} maps {host}{path} to "
                                       "no service (not a documented answer)"}, lb)
    path_of = f"projects/{project}/locations/{region}/services/{name}"
    service = cloud.store.get("run", path_of)
    if service is None:
        return Response(404, {"error": f"{neg['name']} maps {host}{path} to Cloud Run service "
                                       f"{name}, which does not exist (not a documented answer)"},
                        lb)
    return _invoke(cloud, service, path, target)


def _route(url_map: dict[str, Any], host: str, path: str) -> str:
    rule = next((r for r in url_map.get("hostRules", [])
                 if any(h == "*" or fnmatch.fnmatchcase(host, h) for h in r.get("hosts", []))),
                None)
    if rule is None:
        return str(url_map.get("defaultService", ""))
    matcher = next((m for m in url_map.get("pathMatchers", [])
                    if m.get("name") == rule.get("pathMatcher")), {})
    if matcher.get("routeRules"):
        raise NotModelled(f"URL map {url_map.get('name')} routes by route rules")
    best = ("", -1)
    for path_rule in matcher.get("pathRules", []):
        for pattern in path_rule.get("paths", []):
            prefix = pattern[:-1] if pattern.endswith("*") else None
            matched = path.startswith(prefix) if prefix is not None else path == pattern
            if matched and len(pattern) > best[1]:
                best = (path_rule.get("service", ""), len(pattern))
    return best[0] or str(matcher.get("defaultService") or url_map.get("defaultService", ""))


def _masked(mask: str, host: str, path: str) -> str | None:
    """The <service> a URL mask takes from host and path: the mask's host part against the
    host label by label, its path part against the path's leading segments."""
    mask = mask.split("://", 1)[-1]
    mask_host, slash, mask_path = mask.partition("/")
    found: dict[str, str] = {}
    if mask_host and not _fits(mask_host.split("."), host.lower().split("."), found):
        return None
    if slash:
        wanted = [s for s in mask_path.split("/") if s]
        segments = [s for s in path.split("/") if s]
        if not _fits(wanted, segments[:len(wanted)], found):
            return None
    return found.get("service")


def _fits(pattern: list[str], parts: list[str], found: dict[str, str]) -> bool:
    if len(pattern) != len(parts):
        return False
    for want, got in zip(pattern, parts, strict=False):
        if want in ("<service>", "<tag>"):
            found[want[1:-1]] = got
        elif want.lower() != got:
            return False
    return True


def _invoke(cloud: Cloud, service: Any, path: str, target: Target) -> Response:
    body = service.body
    name = service.path
    # Every ingress setting admits an internal Application Load Balancer's requests.
    policy = cloud.current_policy(("run", name))
    members = {m for b in policy.get("bindings", []) if b.get("role") in INVOKERS
               for m in b.get("members", [])}
    if "allUsers" not in members:
        accepted = [body.get("uri", ""), *body.get("urls", []), *body.get("customAudiences", [])]
        if target.audience is None or not target.identity:
            return Response(401, {"error": "no ID token"}, name)
        if target.audience not in accepted:
            return Response(401, {"error": f"the token's audience {target.audience} is not one "
                                           f"of {', '.join(a for a in accepted if a)}"}, name)
        if f"serviceAccount:{target.identity}" not in members:
            return Response(403, {"error": f"serviceAccount:{target.identity} may not invoke "
                                           f"{name.rsplit('/', 1)[-1]}"}, name)
    return Response(200, {"service": name.rsplit("/", 1)[-1], "path": path}, name)
