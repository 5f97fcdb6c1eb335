"""The proxy bundle: what it wires, and that reading it back gives the plan's properties."""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree as ET

from orchestrator.kinds import proxy_bundle

SPEC = {
    "basePath": "/shop",
    "targets": [
        {"name": "default", "url": "https://api.internal.example.com/catalog",
         "audience": "https://catalog-abc-ew.a.run.app"},
        {"name": "orders", "url": "https://api.internal.example.com/orders",
         "audience": "https://api.internal.example.com/orders", "pathPrefix": "/orders",
         "sslInfo": {"enforce": True, "trustStore": "ref://internal-ca"}},
    ],
}


def _files(bundle: bytes) -> dict[str, ET.Element]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {n: ET.fromstring(zf.read(n)) for n in zf.namelist()}


def test_target_sends_an_id_token_whose_audience_an_assign_message_sets() -> None:
    files = _files(proxy_bundle.build("shop", SPEC))
    target = files["apiproxy/targets/orders.xml"]
    audience = target.find("HTTPTargetConnection/Authentication/GoogleIDToken/Audience")
    assert audience is not None and audience.get("ref") == "provision.audience.orders"
    assert target.findtext("HTTPTargetConnection/URL") == "https://api.internal.example.com/orders"
    assert target.findtext("HTTPTargetConnection/SSLInfo/Enabled") == "true"
    assert target.findtext("PreFlow/Request/Step/Name") == "AM-Audience-orders"
    policy = files["apiproxy/policies/AM-Audience-orders.xml"]
    assert policy.findtext("AssignVariable/Name") == "provision.audience.orders"
    assert policy.findtext("AssignVariable/Value") == "https://api.internal.example.com/orders"


def test_prefixed_routes_come_before_the_default() -> None:
    proxy = _files(proxy_bundle.build("shop", SPEC))["apiproxy/proxies/default.xml"]
    rules = proxy.findall("RouteRule")
    assert [r.findtext("TargetEndpoint") for r in rules] == ["orders", "default"]
    assert "/orders" in (rules[0].findtext("Condition") or "")
    assert rules[1].find("Condition") is None
    assert proxy.findtext("HTTPProxyConnection/BasePath") == "/shop"


def test_build_is_deterministic_and_reads_back() -> None:
    first = proxy_bundle.build("shop", SPEC)
    assert first == proxy_bundle.build("shop", SPEC)
    back = proxy_bundle.read(first)
    assert back["basePath"] == "/shop"
    assert [t["name"] for t in back["targets"]] == ["default", "orders"]
    assert back["targets"][1]["pathPrefix"] == "/orders"
    assert back["targets"][1]["sslInfo"] == {"enforce": True, "trustStore": "ref://internal-ca"}
    assert back["targets"][0]["audience"] == "https://catalog-abc-ew.a.run.app"


def test_a_target_that_strips_its_prefix_sets_the_url_without_it() -> None:
    spec = {"basePath": "/shop", "targets": [
        {"name": "orders", "url": "https://orders.internal.example.com",
         "audience": "https://orders.internal.example.com", "pathPrefix": "/v1.0/orders",
         "stripPrefix": True},
        {"name": "catalog", "url": "https://api.internal.example.com",
         "audience": "https://api.internal.example.com/catalog", "pathPrefix": "/catalog"}]}
    files = _files(proxy_bundle.build("shop", spec))
    orders = files["apiproxy/targets/orders.xml"]
    assert [n.text for n in orders.findall("PreFlow/Request/Step/Name")] == [
        "AM-Audience-orders", "AM-Path-orders"]
    policy = files["apiproxy/policies/AM-Path-orders.xml"]
    assigned = {a.findtext("Name"): a.findtext("Value") or a.findtext("Template")
                for a in policy.findall("AssignVariable")}
    # The prefix's dot is escaped: the regex matches /v1.0/orders, not /v1x0/orders.
    assert assigned == {
        "target.copy.pathsuffix": "false",
        "target.url": r'{target.url}{replaceFirst(proxy.pathsuffix,"^/v1\.0/orders","")}'}
    descriptor = files["apiproxy/shop.xml"]
    assert "AM-Path-orders" in [p.text for p in descriptor.findall("Policies/Policy")]
    # The other target keeps Apigee's default: the suffix, prefix and all.
    assert "apiproxy/policies/AM-Path-catalog.xml" not in files
    back = proxy_bundle.read(proxy_bundle.build("shop", spec))
    assert [t.get("stripPrefix") for t in back["targets"]] == [True, None]
