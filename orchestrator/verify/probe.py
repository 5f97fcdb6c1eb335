"""`verify --probe`: a real request through each API proxy target, under an Apigee debug
session, and what became of it, as a `probe` hop after the walked ones.

For each deployed proxy the ledger holds: a debug session on its deployed revision whose
filter admits only the probe's requests (a header with a token of this run); for each target,
a GET of the proxy's base path and the target's prefix, sent to a hostname of an environment
group that serves the proxy's environment; then the session's transactions (data.list, in
Google's REST reference; data.get), which say where the request went (the target's URL) and
what answered (the target's status, or Apigee's fault). The session's data is deleted
afterwards (kept with keep_tests).

https://cloud.google.com/apigee/docs/api-platform/debug/trace and the debugsessions reference
(https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.environments.apis.revisions.debugsessions);
Apigee's faults: https://cloud.google.com/apigee/docs/api-platform/errorcatalog/mp-runtime-errorcatalog.

The probe goes to https://HOSTNAME (it must resolve and be reachable from where verify runs:
a northbound load balancer, or a machine inside the network), or to `ingress` with the
hostname in the Host header (the emulator's runtime). It carries no credentials: Google's go
only to Google's APIs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from orchestrator import kinds
from orchestrator.engine.steps import target_of
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import invoke
from orchestrator.verify.context import Context
from orchestrator.verify.live import Unreadable, last
from orchestrator.verify.report import Hop, RequestPath

HEADER = "x-provision-probe"
SESSIONS = "apigee.organizations.environments.apis.revisions.debugsessions"
# How long the session records, and how long verify waits for its transactions to show
# (Google's runtime reports them within seconds).
SESSION_SECONDS = 120
WAIT_SECONDS = 60.0
REQUEST_TIMEOUT = 30.0

# Where each of Apigee's faults stops a request, as the walk names that hop.
WHERE = {
    "messaging.adaptors.http.flow.ApplicationNotFound": "deployment",
    "protocol.http.NoResolvedHost": "dns",
    "messaging.adaptors.http.flow.ServiceUnavailable": "endpoint-attachment",
    "messaging.adaptors.http.flow.SslHandshakeFailed": "tls",
}
# A target's own answer, and the hop that explains it (Cloud Run: 401 a token's audience it
# does not accept, 403 an identity that may not invoke it).
TARGET_WHERE = {401: "audience", 403: "invoker"}


@dataclass
class Sent:
    url: str
    status: int | None
    body: Any
    error: str = ""


def probe(ctx: Context, paths: list[RequestPath], ingress: str | None) -> None:
    """Add a `probe` hop to each of architecture A's southbound paths."""
    kind = kinds.get("apigee.api_proxy")
    assert kind is not None
    by_name = {p.name: p for p in paths if p.pattern == "psc-southbound"}
    for rec in ctx.records(kind.name):
        proxy_name = last(rec.path)
        mine = {n: p for n, p in by_name.items() if n.startswith(f"{proxy_name} → ")}
        if not mine:
            continue
        try:
            hops = _probe_proxy(ctx, rec, ingress)
        except Unreadable as exc:
            hops = {n.split(" → ", 1)[1]: (Hop("probe", "unknown", str(exc), rec.step_id), "")
                    for n in mine}
        for name, path in mine.items():
            hop, where = hops.get(name.split(" → ", 1)[1]) or (
                Hop("probe", "unknown", "not probed", rec.step_id), "")
            path.hops.append(_placed(hop, where, path))


def _probe_proxy(ctx: Context, rec: Any, ingress: str | None) -> dict[str, tuple[Hop, str]]:
    """Each target's probe hop, and the walked hop where it stopped (or "")."""
    org = rec.path.split("/")[1]
    kind = kinds.get("apigee.api_proxy")
    proxy = ctx.live.kind(kind, target_of(kind, rec.path, rec.spec))
    if not proxy or proxy.get("state") != "READY":
        state = (proxy or {}).get("state") or "not there"
        raise Unreadable(f"the proxy's deployment is {state}: nothing to probe until it is "
                         "READY")
    env = proxy.get("environment", "")
    host = _hostname(ctx, org, env)
    revision = (f"organizations/{org}/environments/{env}/apis/{last(rec.path)}/revisions/"
                f"{proxy.get('revision')}")
    token = hashlib.sha256(f"{revision}/{ctx.live.clock.now()}".encode()).hexdigest()[:16]
    svc = ctx.live.clients.discovery("apigee")
    targets = proxy.get("targets", [])
    try:
        session = invoke(svc, f"{SESSIONS}.create", parent=revision, body={
            "filter": f'(request.header.{HEADER} = "{token}")',
            "count": min(15, max(1, len(targets))), "timeout": str(SESSION_SECONDS)})
    except Exception as exc:
        err = from_exception(exc)
        if err is None:
            raise
        raise Unreadable(f"Apigee refused the debug session: {err}") from exc
    name = f"{revision}/debugsessions/{session['name']}"
    sent = {t["name"]: _send(ingress, host, proxy.get("basePath", "/"), t, token)
            for t in targets}
    transactions = _transactions(ctx, name, len(sent))
    if not ctx.keep_tests:
        invoke(svc, f"{SESSIONS}.deleteData", name=name)
    out = {}
    for target in targets:
        request = sent[target["name"]]
        trace = next((t for t in transactions if _client_uri(t) == _path_of(request.url)), None)
        out[target["name"]] = _hop(rec.step_id, request, trace, session["name"])
    return out


def _placed(hop: Hop, where: str, path: RequestPath) -> Hop:
    """A broken probe names the step to change: the first broken walked hop's (the walk says
    why), else that of the hop where Apigee's fault or the service's answer places it."""
    if hop.status != "broken":
        return hop
    walked = next((h for h in path.hops if h.status == "broken" and h.step), None) or next(
        (h for h in path.hops if h.name == where and h.step), None)
    if walked is None:
        return hop
    return Hop(hop.name, hop.status, hop.evidence, walked.step, f"see the {walked.name} hop")


def _hostname(ctx: Context, org: str, env: str) -> str:
    parent = f"organizations/{org}"
    for group in ctx.live.items("apigee.organizations.envgroups.list", "environmentGroups",
                                parent=parent):
        attached = ctx.live.items("apigee.organizations.envgroups.attachments.list",
                                  "environmentGroupAttachments",
                                  parent=f"{parent}/envgroups/{group['name']}")
        if any(a.get("environment") == env for a in attached) and group.get("hostnames"):
            return str(group["hostnames"][0])
    raise Unreadable(f"no environment group serves environment {env}: no hostname to send the "
                     "probe to")


def _send(ingress: str | None, host: str, base_path: str, target: dict[str, Any],
          token: str) -> Sent:
    path = base_path.rstrip("/") + (target.get("pathPrefix") or "/")
    url = f"https://{host}{path}"
    headers = {HEADER: token}
    where = f"{ingress}{path}" if ingress else url
    if ingress:
        headers["Host"] = host
    try:
        answered = requests.get(where, headers=headers, timeout=REQUEST_TIMEOUT,
                                allow_redirects=False)
    except requests.RequestException as exc:
        return Sent(url, None, None, f"{type(exc).__name__}: {exc}")
    try:
        body: Any = answered.json()
    except ValueError:
        body = answered.text[:300]
    return Sent(url, answered.status_code, body)


def _transactions(ctx: Context, session: str, expected: int) -> list[dict[str, Any]]:
    """The session's transactions, once as many as the probes sent show (or the wait ends)."""
    clients, clock = ctx.live.clients, ctx.live.clock
    svc = clients.discovery("apigee")
    deadline = clock.now() + WAIT_SECONDS
    while True:
        listed = clients.session().get(clients.url("apigee", f"v1/{session}/data"))
        ids = listed.json() if listed.status_code == 200 else []
        if len(ids) >= expected or clock.now() >= deadline:
            return [invoke(svc, f"{SESSIONS}.data.get", name=f"{session}/data/{i}")
                    for i in ids]
        clock.sleep(2.0)


def _results(transaction: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for p in transaction.get("point", []) for r in p.get("results", [])]


def _client_uri(transaction: dict[str, Any]) -> str:
    return next((r.get("uRI", "") for r in _results(transaction)
                 if r.get("ActionResult") == "RequestMessage"), "")


def _path_of(url: str) -> str:
    return urlsplit(url).path or "/"


def _hop(step: str, sent: Sent, trace: dict[str, Any] | None,
         session: str) -> tuple[Hop, str]:
    if sent.status is None:
        return Hop("probe", "unknown", f"GET {sent.url} could not be sent from here "
                   f"({sent.error}): the hostname must resolve and be reachable where verify "
                   "runs", step), ""
    said = f"GET {sent.url} → {sent.status}"
    results = _results(trace or {})
    target_url = next((r.get("uRI", "") for r in results
                       if r.get("ActionResult") == "RequestMessage"
                       and "://" in r.get("uRI", "")), "")
    target_status = next((r.get("statusCode") for r in results
                          if r.get("ActionResult") == "ResponseMessage"), None)
    seen = (f"; debug session {session}: the target {target_url} answered {target_status}"
            if target_url and target_status else
            f"; debug session {session}: Apigee sent it to {target_url}" if target_url else
            f"; debug session {session} kept no transaction of it" if trace is None else "")
    fault = (sent.body.get("fault") or {}) if isinstance(sent.body, dict) else {}
    code = (fault.get("detail") or {}).get("errorcode", "")
    if fault:
        where = WHERE.get(code, "")
        return Hop("probe", "broken", f"{said}: Apigee's fault {code}, "
                   f"\"{fault.get('faultstring', '')}\"{seen}", step,
                   f"see the {where} hop" if where else "see Apigee's fault"), where
    if sent.status < 400:
        return Hop("probe", "ok", said + seen, step), ""
    if sent.status == 404:
        return Hop("probe", "warning", f"{said}: the service answered 404 for the probe's path"
                   f"{seen}", step), ""
    where = TARGET_WHERE.get(sent.status, "")
    detail = json.dumps(sent.body)[:200] if sent.body else ""
    return Hop("probe", "broken", f"{said}: {detail}{seen}", step,
               f"see the {where} hop" if where else "see the service's logs"), where
