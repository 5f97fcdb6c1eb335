"""Apigee debug sessions on a deployed proxy revision, and the transactions they keep
(https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.environments.apis.revisions.debugsessions).

- `create` needs the revision deployed to the environment; the body's `timeout` (seconds,
  else the query's, else 300) is how long the session records, `count` (1-15, default 10) how
  many transactions, `filter` a flow condition a request must meet to be recorded. A filter the
  emulator's runtime does not evaluate (runtime/messages.py says which it does) is refused 400
  here, where Google would take it: said so, not guessed.
- `data.list` (in Google's REST reference, not in the discovery document: served from the
  reference, https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.environments.apis.revisions.debugsessions.data/list,
  permission apigee.tracesessions.get) answers the transaction ids, a JSON array;
  `data.get` one transaction (`completed`, `point`); `deleteData` empties the session.
Transactions come from requests through the emulator's Apigee runtime (`runtime.messages`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from google_facts import discovery
from provision_emulator import errors
from provision_emulator.call import Call
from provision_emulator.runtime import conditions
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.apis.base import ApiRules
    from provision_emulator.cloud import Cloud

SESSIONS = "organizations.environments.apis.revisions.debugsessions"
METHODS = "apigee.organizations.environments.apis.revisions.debugsessions"
TRANSACTIONS = "_transactions"  # [{"id", "completed", "point"}], kept beside the session
ENDS = "_ends"  # when the session stops recording
DEFAULT_TIMEOUT = 300

DATA_LIST = discovery.Method(
    api="apigee", version="v1", id=f"{METHODS}.data.list", http_method="GET",
    path="v1/{+parent}/data",
    flat_path="v1/organizations/{organizationsId}/environments/{environmentsId}/apis/{apisId}/"
              "revisions/{revisionsId}/debugsessions/{debugsessionsId}/data",
    parameters={
        "parent": discovery.Parameter(
            "parent", "path", "string", required=True,
            pattern="^organizations/[^/]+/environments/[^/]+/apis/[^/]+/revisions/[^/]+/"
                    "debugsessions/[^/]+$"),
        "limit": discovery.Parameter("limit", "query", "integer"),
    },
    request=None, response=None,
)


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("_")}


def _session(cloud: Cloud, path: str) -> Resource:
    res = cloud.store.get("apigee", path)
    if res is None or res.collection != SESSIONS:
        raise errors.not_found(f"Debug session {path.rsplit('/', 1)[-1]} not found.")
    return res


def create(cloud: Cloud, call: Call) -> dict[str, Any]:
    parent = call.path.removesuffix("/debugsessions")
    org, _, env, _, proxy, _, revision = parent.split("/")[1:8]
    deployment = (f"organizations/{org}/environments/{env}/apis/{proxy}/revisions/{revision}/"
                  "deployments")
    if cloud.store.get("apigee", deployment) is None:
        raise errors.invalid(f"API proxy {proxy} revision {revision} is not deployed to "
                             f"environment {env}.")
    body = dict(call.body or {})
    count = int(body.get("count") or 10)
    if not 1 <= count <= 15:
        raise errors.invalid("count must be between 1 and 15.")
    timeout = int(body.get("timeout") or call.arg("timeout") or DEFAULT_TIMEOUT)
    if body.get("filter"):
        try:
            conditions.evaluate(body["filter"], {})
        except ValueError as exc:
            raise errors.invalid(f"filter {body['filter']!r}: {exc}") from None
    name = str(body.get("name") or uuid.uuid5(uuid.NAMESPACE_URL, f"{parent}/{call.seq}"))
    path = f"{parent}/debugsessions/{name}"
    if cloud.store.get("apigee", path) is not None:
        raise errors.already_exists(f"Debug session {name} already exists.")
    stored = {"name": name, "validity": int(body.get("validity") or 10), "count": count,
              "tracesize": int(body.get("tracesize") or 5120), "timeout": str(timeout),
              **({"filter": body["filter"]} if body.get("filter") else {}),
              ENDS: call.now + cloud.scaled(timeout), TRANSACTIONS: []}
    cloud.put(Resource("apigee", path, SESSIONS, stored, call.now))
    return _public(stored)


def get(cloud: Cloud, call: Call) -> dict[str, Any]:
    return _public(_session(cloud, call.path).body)


def list_sessions(cloud: Cloud, call: Call) -> dict[str, Any]:
    parent = call.path.removesuffix("/debugsessions")
    sessions = [{"id": r.body["name"], "timestampMs": str(int(r.created * 1000))}
                for r in cloud.store.children("apigee", f"{parent}/debugsessions")
                if r.collection == SESSIONS and cloud.now() < r.body[ENDS]]
    return {"sessions": sessions} if sessions else {}


def list_data(cloud: Cloud, call: Call) -> list[str]:
    ids = [t["id"] for t in _session(cloud, call.path.removesuffix("/data")).body[TRANSACTIONS]]
    limit = call.arg("limit")
    return ids[: int(limit)] if limit else ids


def get_data(cloud: Cloud, call: Call) -> dict[str, Any]:
    session_path, _, transaction = call.path.rpartition("/data/")
    for kept in _session(cloud, session_path).body[TRANSACTIONS]:
        if kept["id"] == transaction:
            return {"completed": kept["completed"], "point": kept["point"]}
    raise errors.not_found(f"Transaction {transaction} not found in debug session.")


def delete_data(cloud: Cloud, call: Call) -> dict[str, Any]:
    res = _session(cloud, call.path.removesuffix("/data"))
    cloud.put(Resource("apigee", res.path, SESSIONS, {**res.body, TRANSACTIONS: []}, res.created))
    return {}


def record(cloud: Cloud, deployment: str, variables: dict[str, str],
           points: list[dict[str, Any]]) -> None:
    """Keep a transaction through `deployment` (".../revisions/R/deployments") in each of the
    revision's sessions still recording whose filter it meets."""
    revision = deployment.removesuffix("/deployments")
    now = cloud.now()
    for res in cloud.store.children("apigee", f"{revision}/debugsessions"):
        body = res.body
        if res.collection != SESSIONS or now >= body[ENDS] or (
                len(body[TRANSACTIONS]) >= body["count"]):
            continue
        if body.get("filter") and not conditions.evaluate(body["filter"], variables):
            continue
        number = len(body[TRANSACTIONS]) + 1
        kept = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{res.path}/{number}")),
                "completed": True, "point": points}
        cloud.put(Resource("apigee", res.path, SESSIONS,
                           {**body, TRANSACTIONS: [*body[TRANSACTIONS], kept]}, res.created))


def register(rules: ApiRules) -> None:
    rules.documented_methods = (*rules.documented_methods, DATA_LIST)
    handlers = {"create": create, "get": get, "list": list_sessions, "data.list": list_data,
                "data.get": get_data, "deleteData": delete_data}
    for method, handler in handlers.items():
        rules.handler(f"{METHODS}.{method}")(handler)
