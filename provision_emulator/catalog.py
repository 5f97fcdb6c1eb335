"""What the discovery documents say about each collection: its resource path pattern, schema,
whether it can be created, and which method plays which generic role.

A collection is a discovery resource chain ("subnetworks", "projects.locations.services"). Paths
here are relative: the method path without servicePath and version ("projects/p/global/networks/n").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from google_facts import discovery
from google_facts.discovery import Method

_VERSION = re.compile(r"^v\d+(?:alpha\d*|beta\d*|p\d+beta\d*)?$")
VAR = "{}"

# The generic role of a method, from its name. Others need a rule (or answer 501).
ROLES = {
    "insert": "create",
    "create": "create",
    "get": "get",
    "list": "list",
    "delete": "delete",
    "patch": "patch",
    "update": "update",
    "aggregatedList": "aggregatedList",
    "getIamPolicy": "getIamPolicy",
    "setIamPolicy": "setIamPolicy",
    "testIamPermissions": "testIamPermissions",
}
OPERATION_ROLES = {
    "get": "operation.get",
    "wait": "operation.wait",
    "list": "operation.list",
    "delete": "operation.delete",
}
def prefix_length(method: Method) -> int:
    """How many leading path segments are servicePath and version, not resource path."""
    service_path = discovery.document(method.api).get("servicePath", "")
    count = len([s for s in service_path.split("/") if s])
    segments = method.flat_path.split("/")
    if count < len(segments) and _VERSION.match(segments[count]):
        count += 1
    return count


def is_operations_collection(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower().endswith("operations")


def is_operations(method: Method) -> bool:
    return is_operations_collection(method.resource)


def role(method: Method) -> str | None:
    if is_operations(method):
        return OPERATION_ROLES.get(method.name)
    return ROLES.get(method.name)


def returns_operation(method: Method) -> bool:
    if method.response is None:
        return False
    if method.api == "compute":
        return method.response == "Operation"
    props = discovery.schema(method.api, method.response).get("properties", {})
    return "done" in props and "response" in props


@dataclass(frozen=True)
class Collection:
    api: str
    name: str
    pattern: tuple[str, ...]  # relative path segments of one resource, VAR for each variable
    schema: str | None  # the resource's schema (the get method's response)
    creatable: bool
    list_field: str | None  # the array field of list responses ("items", "services")

    @property
    def singular_id_param(self) -> str:
        """The create query parameter that carries the new id: "services" -> "serviceId"."""
        last = self.name.rsplit(".", 1)[-1]
        stem = last[:-3] + "y" if last.endswith("ies") else last.removesuffix("s")
        return f"{stem}Id"


def _pattern(method: Method) -> tuple[str, ...]:
    segments = method.flat_path.split("/")[prefix_length(method) :]
    return tuple(VAR if s.startswith("{") else s for s in segments)


def _list_field(api: str, list_method: Method | None, schema: str | None) -> str | None:
    if list_method is None or list_method.response is None:
        return None
    props = discovery.schema(api, list_method.response).get("properties", {})
    arrays = [k for k, p in props.items() if p.get("type") == "array"]
    for name in arrays:
        if schema and props[name].get("items", {}).get("$ref") == schema:
            return name
    return "items" if "items" in arrays else (arrays[0] if arrays else None)


@functools.cache
def collections(api: str) -> dict[str, Collection]:
    by_resource: dict[str, dict[str, Method]] = {}
    for m in discovery.methods(api):
        by_resource.setdefault(m.resource, {})[m.name] = m
    out = {}
    for name, ms in by_resource.items():
        get = ms.get("get")
        if get is None or get.http_method != "GET":
            continue
        schema = get.response
        out[name] = Collection(
            api=api,
            name=name,
            pattern=_pattern(get),
            schema=schema,
            creatable="insert" in ms or "create" in ms,
            list_field=_list_field(api, ms.get("list"), schema),
        )
    return out
