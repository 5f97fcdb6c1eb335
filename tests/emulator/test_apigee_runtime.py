"""The emulator's Apigee runtime: a request to an environment group's hostname goes through the
deployed proxy and what architecture A built to a Cloud Run service, or stops where Google's
configuration would stop it, with Apigee's fault; debug sessions keep the transactions, through
google-api-python-client (and the REST reference's data.list, which discovery lacks)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery

import orchestrator
from provision_emulator import Emulator

PLAN = Path(__file__).parents[2] / "plans" / "psc-cloud-run.yaml"
APIGEE, BACKEND = "apigee-demo-project", "backend-demo-project"
ENV = f"organizations/{APIGEE}/environments/eval"


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator() as emu:
        state = tmp_path_factory.mktemp("runtime") / ".provision"
        with orchestrator.load(PLAN, emulator=emu, state_dir=state) as dep:
            result = dep.apply()
            assert result.ok, [(f.step, f.message) for f in result.failures]
        yield emu


def send(emu: Emulator, path: str, **headers: str) -> requests.Response:
    return requests.get(f"{emu.url}/_runtime{path}",
                        headers={"Host": "api.example.com", **headers}, timeout=30)


def api(emu: Emulator, name: str, version: str) -> Any:
    return discovery.build(name, version, credentials=AnonymousCredentials(),
                           static_discovery=True,
                           client_options={"api_endpoint": f"{emu.url}/{name}/"})


def fault(response: requests.Response) -> str:
    return response.json()["fault"]["detail"]["errorcode"]


def test_a_request_reaches_the_service_with_the_path_the_plan_chose(applied: Emulator) -> None:
    answered = send(applied, "/shop/orders/42")
    assert answered.status_code == 200
    assert answered.json() == {"service": "orders", "path": "/orders/42"}
    assert send(applied, "/shop/catalog").json() == {"service": "catalog", "path": "/catalog"}
    missing = send(applied, "/elsewhere/1")
    assert missing.status_code == 404
    assert fault(missing) == "messaging.adaptors.http.flow.ApplicationNotFound"
    assert "host: api.example.com and url: /elsewhere/1" in (
        missing.json()["fault"]["faultstring"])
    other_host = send(applied, "/shop/orders/42", Host="other.example.com")
    assert fault(other_host) == "messaging.adaptors.http.flow.ApplicationNotFound"


def test_a_debug_session_keeps_the_transactions_its_filter_admits(applied: Emulator) -> None:
    apigee = api(applied, "apigee", "v1")
    revisions = apigee.organizations().environments().apis().revisions()
    deployment = apigee.organizations().environments().deployments().list(
        parent=ENV).execute()["deployments"][0]
    parent = f"{ENV}/apis/{deployment['apiProxy']}/revisions/{deployment['revision']}"
    session = revisions.debugsessions().create(parent=parent, body={
        "filter": '(request.header.x-probe = "one")', "timeout": "60"}).execute()
    name = f"{parent}/debugsessions/{session['name']}"
    assert session["count"] == 10 and session["timeout"] == "60"
    send(applied, "/shop/orders/1", **{"x-probe": "one"})
    send(applied, "/shop/orders/2", **{"x-probe": "two"})  # not admitted by the filter
    send(applied, "/shop/payments/3", **{"x-probe": "one"})
    listed = requests.get(f"{applied.url}/apigee/v1/{name}/data", timeout=30)
    assert listed.status_code == 200
    ids = listed.json()
    assert len(ids) == 2 and all(isinstance(i, str) for i in ids)
    first = revisions.debugsessions().data().get(name=f"{name}/data/{ids[0]}").execute()
    assert first["completed"] is True
    results = [r for p in first["point"] for r in p.get("results", [])]
    requested = [r["uRI"] for r in results if r["ActionResult"] == "RequestMessage"]
    assert requested == ["/shop/orders/1", "https://api.internal.example.com/orders/1"]
    assert [r["statusCode"] for r in results if r["ActionResult"] == "ResponseMessage"] == ["200"]
    revisions.debugsessions().deleteData(name=name).execute()
    assert requests.get(f"{applied.url}/apigee/v1/{name}/data", timeout=30).json() == []
    with pytest.raises(Exception, match="not evaluated"):
        revisions.debugsessions().create(parent=parent, body={
            "filter": "request.header.x-probe ~~ 'one'"}).execute()


def test_each_broken_hop_stops_the_request_where_google_would(applied: Emulator) -> None:
    """Changes made one after another, each breaking a hop nearer the runtime."""
    run = api(applied, "run", "v2")
    service = f"projects/{BACKEND}/locations/europe-west1/services/orders"
    services = run.projects().locations().services()
    policy = services.getIamPolicy(resource=service).execute()
    services.setIamPolicy(resource=service, body={"policy": {
        "bindings": [], "etag": policy.get("etag", "")}}).execute()
    denied = send(applied, "/shop/orders/1")
    assert denied.status_code == 403  # the service's own answer, passed on
    assert "may not invoke orders" in json.dumps(denied.json())
    assert send(applied, "/shop/catalog/1").status_code == 200

    apigee = api(applied, "apigee", "v1")
    aliases = apigee.organizations().environments().keystores().aliases()
    aliases.delete(name=f"{ENV}/keystores/backends-trust/aliases/backends-root").execute()
    untrusted = send(applied, "/shop/catalog/1")
    assert untrusted.status_code == 503
    assert fault(untrusted) == "messaging.adaptors.http.flow.SslHandshakeFailed"
    assert "truststore" in untrusted.json()["fault"]["faultstring"]

    dns = api(applied, "dns", "v1")
    dns.resourceRecordSets().delete(project=APIGEE, managedZone="internal-example-apigee",
                                    name="api.internal.example.com.", type="A").execute()
    unresolved = send(applied, "/shop/catalog/1")
    assert unresolved.status_code == 503
    assert fault(unresolved) == "protocol.http.NoResolvedHost"
    assert unresolved.json()["fault"]["detail"]["reason"] == "TARGET_CONNECT_HOST_NOT_REACHABLE"
