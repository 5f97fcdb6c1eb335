"""Apigee API proxy bundles: built from a plan's `apigee.api_proxy` properties, and read back.

Each target with an `audience` gets a TargetEndpoint whose `<Authentication><GoogleIDToken>`
audience comes from a flow variable that an AssignMessage policy sets: the audience Cloud Run
checks is the service's run.app URL or one of its customAudiences, never the private hostname
the call goes to. A target without one (a VM backend) sends no token; an http:// target gets
no SSLInfo.

Apigee appends the request's path suffix (what follows the base path) to the target URL
(`target.copy.pathsuffix`, true by default), so a target routed by `pathPrefix: /orders` sends
/orders/42. With `stripPrefix`, an AssignMessage policy in the target's request PreFlow turns
that copy off and sets `target.url` to the URL plus the suffix without the prefix, with the
message template function `replaceFirst` (flow variables and template functions:
https://cloud.google.com/apigee/docs/api-platform/reference/variables-reference,
https://cloud.google.com/apigee/docs/api-platform/reference/message-template-intro): the
service receives /42.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any
from xml.etree import ElementTree as ET


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + ET.tostring(root)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _policy_name(target: str) -> str:
    return f"AM-Audience-{target}"


def _path_policy(target: str) -> str:
    return f"AM-Path-{target}"


def _variable(target: str) -> str:
    return f"provision.audience.{target}"


def build(name: str, spec: dict[str, Any]) -> bytes:
    """The zip Apigee imports, deterministic for a given spec (so revisions change only when
    the spec does)."""
    targets = spec.get("targets", [])
    files: dict[str, bytes] = {}

    root = ET.Element("APIProxy", name=name)
    _sub(root, "Description", "Built by provision")
    _sub(root, "BasePaths", spec.get("basePath", "/"))
    policies = _sub(root, "Policies")
    for t in targets:
        if t.get("audience"):
            _sub(policies, "Policy", _policy_name(t["name"]))
        if t.get("stripPrefix"):
            _sub(policies, "Policy", _path_policy(t["name"]))
    ends = _sub(root, "TargetEndpoints")
    for t in targets:
        _sub(ends, "TargetEndpoint", t["name"])
    _sub(_sub(root, "ProxyEndpoints"), "ProxyEndpoint", "default")
    files[f"apiproxy/{name}.xml"] = _xml(root)

    proxy = ET.Element("ProxyEndpoint", name="default")
    _sub(proxy, "PreFlow", name="PreFlow")
    conn = _sub(proxy, "HTTPProxyConnection")
    _sub(conn, "BasePath", spec.get("basePath", "/"))
    # Specific prefixes first: Apigee takes the first matching RouteRule.
    ordered = sorted(targets, key=lambda t: (not t.get("pathPrefix"), targets.index(t)))
    for t in ordered:
        rule = _sub(proxy, "RouteRule", name=t["name"])
        if t.get("pathPrefix"):
            _sub(rule, "Condition", f'(proxy.pathsuffix MatchesPath "{t["pathPrefix"]}/**") or '
                                    f'(proxy.pathsuffix == "{t["pathPrefix"]}")')
        _sub(rule, "TargetEndpoint", t["name"])
    files["apiproxy/proxies/default.xml"] = _xml(proxy)

    for t in targets:
        endpoint = ET.Element("TargetEndpoint", name=t["name"])
        request = _sub(_sub(endpoint, "PreFlow", name="PreFlow"), "Request")
        if t.get("audience"):
            policy = ET.Element("AssignMessage", name=_policy_name(t["name"]))
            assign = _sub(policy, "AssignVariable")
            _sub(assign, "Name", _variable(t["name"]))
            _sub(assign, "Value", t["audience"])
            _sub(policy, "IgnoreUnresolvedVariables", "false")
            files[f"apiproxy/policies/{_policy_name(t['name'])}.xml"] = _xml(policy)
            _sub(_sub(request, "Step"), "Name", _policy_name(t["name"]))
        if t.get("stripPrefix"):
            files[f"apiproxy/policies/{_path_policy(t['name'])}.xml"] = _xml(
                _strip(t["name"], t.get("pathPrefix", "")))
            _sub(_sub(request, "Step"), "Name", _path_policy(t["name"]))
        http = _sub(endpoint, "HTTPTargetConnection")
        if t.get("audience"):
            auth = _sub(http, "Authentication")
            _sub(_sub(auth, "GoogleIDToken"), "Audience", ref=_variable(t["name"]))
        if _tls(t):
            ssl = t.get("sslInfo", {})
            info = _sub(http, "SSLInfo")
            _sub(info, "Enabled", "true")
            _sub(info, "Enforce", str(ssl.get("enforce", True)).lower())
            if ssl.get("ignoreValidationErrors"):
                _sub(info, "IgnoreValidationErrors", "true")
            if ssl.get("trustStore"):
                _sub(info, "TrustStore", ssl["trustStore"])
        _sub(http, "URL", t["url"])
        files[f"apiproxy/targets/{t['name']}.xml"] = _xml(endpoint)

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, files[path])
    return out.getvalue()


def _tls(target: dict[str, Any]) -> bool:
    """A target gets SSLInfo when it calls https (or says how to), not for plain http."""
    return bool(target.get("sslInfo")) or not str(target.get("url", "")).startswith("http://")


def _strip(target: str, prefix: str) -> ET.Element:
    """The policy that sends the path suffix without `prefix` (Java regex; re.escape's
    backslashes before punctuation are valid there)."""
    policy = ET.Element("AssignMessage", name=_path_policy(target))
    copy = _sub(policy, "AssignVariable")
    _sub(copy, "Name", "target.copy.pathsuffix")
    _sub(copy, "Value", "false")
    url = _sub(policy, "AssignVariable")
    _sub(url, "Name", "target.url")
    pattern = "^" + re.escape(prefix.rstrip("/"))
    _sub(url, "Template", f'{{target.url}}{{replaceFirst(proxy.pathsuffix,"{pattern}","")}}')
    _sub(policy, "IgnoreUnresolvedVariables", "false")
    return policy


def read(bundle: bytes) -> dict[str, Any]:
    """The properties a bundle built by `build` expresses (what is live, for the diff)."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        names = zf.namelist()
        proxy = ET.fromstring(zf.read("apiproxy/proxies/default.xml"))
        base_path = proxy.findtext("HTTPProxyConnection/BasePath", "/")
        prefixes: dict[str, str] = {}
        for rule in proxy.findall("RouteRule"):
            cond = rule.findtext("Condition")
            if cond:
                prefixes[rule.findtext("TargetEndpoint", "")] = cond.split('"')[1].removesuffix(
                    "/**"
                )
        root = next(n for n in names if n.count("/") == 1 and n.endswith(".xml"))
        order = [e.text or "" for e in ET.fromstring(zf.read(root)).findall(
            "TargetEndpoints/TargetEndpoint")]
        targets = []
        for name in order:
            endpoint = ET.fromstring(zf.read(f"apiproxy/targets/{name}.xml"))
            target: dict[str, Any] = {
                "name": name,
                "url": endpoint.findtext("HTTPTargetConnection/URL", ""),
            }
            if f"apiproxy/policies/{_policy_name(name)}.xml" in names:
                policy = ET.fromstring(zf.read(f"apiproxy/policies/{_policy_name(name)}.xml"))
                target["audience"] = policy.findtext("AssignVariable/Value", "")
            if name in prefixes:
                target["pathPrefix"] = prefixes[name]
            if f"apiproxy/policies/{_path_policy(name)}.xml" in names:
                target["stripPrefix"] = True
            info = endpoint.find("HTTPTargetConnection/SSLInfo")
            if info is not None:
                ssl: dict[str, Any] = {"enforce": info.findtext("Enforce") == "true"}
                if info.findtext("IgnoreValidationErrors") == "true":
                    ssl["ignoreValidationErrors"] = True
                if info.findtext("TrustStore"):
                    ssl["trustStore"] = info.findtext("TrustStore")
                target["sslInfo"] = ssl
            targets.append(target)
    return {"basePath": base_path, "targets": targets}
