"""The Apigee runtime's handling of one API request, from the emulator's own configuration:
the environment group that lists the request's host, the proxy deployed to one of its
environments (on an instance) whose base path the path starts with, the proxy bundle's route
rules, its target's PreFlow AssignMessage policies, its URL, TLS settings and Google ID token,
then the target call (backend.py). Each step is recorded as a debug transaction
(`Transaction`), kept by any debug session whose filter the request meets.

Bundles are evaluated as far as the orchestrator builds them; what is not evaluated is said:
- Route rule conditions and AssignMessage templates: as conditions.py says.
- AssignMessage `AssignVariable` with `Value`, `Ref` or `Template`.
- `target.copy.pathsuffix` (true unless a policy sets it false) appends the path suffix to the
  target URL (https://cloud.google.com/apigee/docs/api-platform/reference/variables-reference).
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

from cryptography import x509

from provision_emulator.apis import apigee, apigee_debug, apigee_keystores, apigee_proxies
from provision_emulator.runtime import apigee_faults, backend, conditions

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud


@dataclass
class Request:
    method: str
    host: str
    path: str  # with its query string, if any
    headers: dict[str, str]


@dataclass
class Transaction:
    """A debug transaction: the points Apigee's debug data has (GoogleCloudApigeeV1Point),
    and what the request is (for a session's filter)."""

    points: list[dict[str, Any]] = field(default_factory=list)

    def info(self, point: str, **properties: str) -> None:
        self.points.append({"id": point, "results": [{
            "ActionResult": "DebugInfo",
            "properties": {"property": [{"name": k, "value": v} for k, v in properties.items()]},
        }]})

    def request(self, verb: str, uri: str, headers: dict[str, str]) -> None:
        self.points.append({"id": "StateChange", "results": [{
            "ActionResult": "RequestMessage", "verb": verb, "uRI": uri,
            "headers": [{"name": k, "value": v} for k, v in headers.items()]}]})

    def response(self, status: int, reason: str) -> None:
        self.points.append({"id": "StateChange", "results": [{
            "ActionResult": "ResponseMessage", "statusCode": str(status),
            "reasonPhrase": reason, "headers": []}]})

    def error(self, status: int, reason: str, content: dict[str, Any]) -> None:
        self.points.append({"id": "Error", "results": [{
            "ActionResult": "ErrorMessage", "statusCode": str(status), "reasonPhrase": reason,
            "content": json.dumps(content), "headers": []}]})


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    # The deployment that handled the request (for debug sessions), if one did.
    deployment: str | None = None
    transaction: Transaction = field(default_factory=Transaction)


def handle(cloud: Cloud, request: Request) -> Answer:
    trace = Transaction()
    trace.request(request.method, request.path, request.headers)
    found = _deployment(cloud, request)
    if found is None:
        fault = apigee_faults.application_not_found(request.host, request.path)
        trace.error(fault.status, fault.reason, fault.body)
        return Answer(fault.status, fault.body, None, trace)
    org, deployment_path, deployment, files, base_path = found
    suffix = request.path.split("?", 1)[0][len(base_path.rstrip("/")):]
    variables = {"proxy.pathsuffix": suffix, "request.verb": request.method,
                 "request.uri": request.path, "proxy.basepath": base_path,
                 **{f"request.header.{k.lower()}": v for k, v in request.headers.items()}}
    trace.info("FlowInfo", **{"proxy.name": deployment["apiProxy"],
                              "proxy.basepath": base_path, "proxy.pathsuffix": suffix})
    answer = _through_proxy(cloud, org, deployment, files, variables, trace)
    answer.deployment = deployment_path
    answer.transaction = trace
    apigee_debug.record(cloud, deployment_path, variables, trace.points)
    return answer


def _through_proxy(cloud: Cloud, org: dict[str, Any], deployment: dict[str, Any],
                   files: dict[str, ET.Element], variables: dict[str, str],
                   trace: Transaction) -> Answer:
    proxy_endpoint = next(root for path, root in files.items() if path.startswith("proxies/"))
    target_name = None
    for rule in proxy_endpoint.findall("RouteRule"):
        condition = rule.findtext("Condition")
        try:
            matched = condition is None or conditions.evaluate(condition, variables)
        except ValueError as exc:
            return _fail(trace, apigee_faults.not_modelled(str(exc)))
        if matched:
            target_name = rule.findtext("TargetEndpoint")
            break
    if target_name is None:
        # No route: the proxy answers itself, with an empty 200.
        trace.response(200, "OK")
        return Answer(200, {})
    endpoint = files.get(f"targets/{target_name}.xml")
    if endpoint is None:
        return _fail(trace, apigee_faults.not_modelled(
            f"target endpoint {target_name} is missing"))
    connection = endpoint.find("HTTPTargetConnection")
    if connection is None:
        return _fail(trace, apigee_faults.not_modelled(f"target {target_name} has no "
                                                "HTTPTargetConnection"))
    variables["target.url"] = connection.findtext("URL", "")
    variables["target.copy.pathsuffix"] = "true"
    for step in endpoint.findall("PreFlow/Request/Step/Name"):
        policy = files.get(f"policies/{step.text}.xml")
        if policy is None or policy.tag != "AssignMessage":
            return _fail(trace, apigee_faults.not_modelled(
                f"policy {step.text} is not an AssignMessage"))
        trace.info("Execution", type="AssignMessageExecution",
                   **{"stepDefinition-name": step.text or ""})
        for assign in policy.findall("AssignVariable"):
            name = assign.findtext("Name", "")
            if assign.find("Template") is not None:
                value = conditions.template(assign.findtext("Template", ""), variables)
            elif assign.find("Ref") is not None:
                value = variables.get(assign.findtext("Ref", ""), "")
            else:
                value = assign.findtext("Value", "")
            variables[name] = value
    url = variables["target.url"]
    if variables["target.copy.pathsuffix"] == "true":
        url += variables["proxy.pathsuffix"]
    audience_el = connection.find("Authentication/GoogleIDToken/Audience")
    audience = None
    if audience_el is not None:
        audience = variables.get(audience_el.get("ref", ""), "") if audience_el.get("ref") else (
            audience_el.text or "")
    ssl = connection.find("SSLInfo")
    enforce = ssl is not None and ssl.findtext("Enforce", "false") == "true"
    trusted = _truststore(cloud, org, deployment["environment"],
                          ssl.findtext("TrustStore", "") if ssl is not None else "")
    target = backend.Target(url=url, enforce_tls=enforce, trusted=trusted, audience=audience,
                            identity=deployment.get("serviceAccount", ""))
    trace.info("FlowInfo", **{"target.name": target_name, "target.url": url})
    trace.request(variables["request.verb"], url, {})
    try:
        response = backend.call(cloud, org, target)
    except backend.Unreachable as exc:
        return _fail(trace, apigee_faults.unreachable(exc.cause, str(exc)))
    except backend.NotModelled as exc:
        return _fail(trace, apigee_faults.not_modelled(str(exc)))
    trace.response(response.status, apigee_faults.reason(response.status))
    trace.info("FlowInfo", **{"target.received.status": str(response.status),
                              "target.served.by": response.served_by})
    return Answer(response.status, response.body)


def _fail(trace: Transaction, fault: apigee_faults.Fault) -> Answer:
    trace.error(fault.status, fault.reason, fault.body)
    return Answer(fault.status, fault.body)


def _deployment(cloud: Cloud, request: Request) -> tuple[
        dict[str, Any], str, dict[str, Any], dict[str, ET.Element], str] | None:
    host = request.host.split(":", 1)[0].lower()
    path = request.path.split("?", 1)[0]
    now = cloud.now()
    for group in cloud.store.in_collection("apigee", apigee.ENVGROUPS):
        if host not in [h.lower() for h in group.body.get("hostnames", [])]:
            continue
        org_path = "/".join(group.path.split("/")[:2])
        org = cloud.store.get("apigee", org_path)
        envs = {r.body.get("environment")
                for r in cloud.store.children("apigee", f"{group.path}/attachments")}
        running = {r.body.get("environment")
                   for r in cloud.store.in_collection("apigee", apigee.INSTANCE_ATTACHMENTS)
                   if r.path.startswith(f"{org_path}/")}
        best = None
        for dep in cloud.store.in_collection("apigee", apigee_proxies.DEPLOYMENTS):
            body = dep.body
            if (not dep.path.startswith(f"{org_path}/") or body["environment"] not in envs
                    or body["environment"] not in running or now < body[apigee_proxies.READY_AT]):
                continue
            revision = cloud.store.get("apigee", f"{org_path}/apis/{body['apiProxy']}/revisions/"
                                                 f"{body['revision']}")
            if revision is None:
                continue
            files = _bundle(revision.body[apigee_proxies.BUNDLE])
            for base in revision.body.get("basepaths", []):
                if _under(path, base) and (best is None or len(base) > len(best[4])):
                    best = (org.body if org else {}, dep.path, body, files, base)
        if best is not None:
            return best
    return None


def _under(path: str, base: str) -> bool:
    base = base.rstrip("/")
    return path == base or path.startswith(base + "/") or not base


def _bundle(data: str) -> dict[str, ET.Element]:
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(data))) as archive:
        return {n.removeprefix("apiproxy/"): ET.fromstring(archive.read(n))
                for n in archive.namelist() if n.startswith("apiproxy/") and n.endswith(".xml")}


def _truststore(cloud: Cloud, org: dict[str, Any], env: str, ref: str) -> list[x509.Certificate]:
    if not ref:
        return []
    env_path = f"organizations/{org['name']}/environments/{env}"
    name = ref.removeprefix("ref://")
    if ref.startswith("ref://"):
        reference = cloud.store.get("apigee", f"{env_path}/references/{name}")
        if reference is None:
            return []
        name = reference.body.get("refers", "")
    keystore = f"{env_path}/keystores/{name}"
    certs: list[x509.Certificate] = []
    for alias in cloud.store.children("apigee", f"{keystore}/aliases"):
        pem = alias.body.get(apigee_keystores.PEM, "")
        if pem:
            certs += x509.load_pem_x509_certificates(pem.encode())
    return certs
