"""Request bodies checked against discovery schemas, with Google's own wording for the failures.

Google's JSON front end names a bad field by its proto path below the request's body field
(`'subnetwork_resource.log_config'`), so the messages here rebuild that path in snake case.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from google_facts import discovery
from google_facts.discovery import Method
from provision_emulator.errors import ApiError

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
# "GoogleCloudRunV2Service" -> "Service": the proto message name behind a one-platform schema.
_SCHEMA_PREFIX = re.compile(r"^Google(?:Cloud)?[A-Z][A-Za-z]*?V\d+(?:alpha\d*|beta\d*)?(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def get_path(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def set_path(value: dict[str, Any], parts: list[str], new: Any) -> None:
    """Set a nested field; None removes it."""
    for part in parts[:-1]:
        value = value.setdefault(part, {})
    if new is None:
        value.pop(parts[-1], None)
    else:
        value[parts[-1]] = new


def message_name(schema: str) -> str:
    return _SCHEMA_PREFIX.sub("", schema)


def body_field(method: Method) -> str:
    """The request field the HTTP body binds to, as Google's messages name it ("" for `body: *`)."""
    if method.request is None:
        return ""
    name = message_name(method.request)
    if method.api == "compute":
        return f"{snake(name)}_resource"
    if name.endswith("Request"):
        return ""
    return snake(name)


def prop_at(api: str, schema: str, path: tuple[str | int, ...]) -> dict[str, Any]:
    """The schema property at a field path (for naming its expected type)."""
    doc = discovery.document(api)
    prop: dict[str, Any] = {"$ref": schema}
    for part in path:
        if "$ref" in prop:
            prop = doc["schemas"][prop["$ref"]]
        if isinstance(part, int):
            prop = prop.get("items", {})
        else:
            prop = prop.get("properties", {}).get(part) or prop.get("additionalProperties") or {}
    if "$ref" in prop:
        prop = doc["schemas"][prop["$ref"]]
    return prop


def _type_name(prop: dict[str, Any]) -> str:
    kind, fmt = prop.get("type"), prop.get("format", "")
    if prop.get("enum"):
        return "TYPE_ENUM"
    if kind == "string" and fmt in ("int64", "uint64"):
        return f"TYPE_{fmt.upper()}"
    return {
        "string": "TYPE_STRING",
        "boolean": "TYPE_BOOL",
        "integer": f"TYPE_{(fmt or 'int32').upper()}",
        "number": "TYPE_DOUBLE",
        "array": "TYPE_MESSAGE (repeated)",
        "object": "TYPE_MESSAGE",
    }.get(kind or "", "TYPE_MESSAGE")


def _location(root: str, path: tuple[str | int, ...]) -> str:
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{snake(part)}" if out else snake(part)
    return out


def camel_keys(api: str, schema: str, value: Any) -> Any:
    """`value` with proto field names (`ip_cidr_range`) as JSON names (`ipCidrRange`): Google's
    JSON parser accepts both."""
    return _camel(discovery.document(api), {"$ref": schema}, value)


def _camel(doc: dict[str, Any], prop: dict[str, Any], value: Any) -> Any:
    if "$ref" in prop:
        prop = doc["schemas"][prop["$ref"]]
    if isinstance(value, dict) and prop.get("type") == "object":
        props = prop.get("properties")
        if props is None:  # a map: its keys are data
            extra = prop.get("additionalProperties") or {}
            return {k: _camel(doc, extra, v) for k, v in value.items()}
        out = {}
        for key, sub in value.items():
            name = camel(key) if key not in props and camel(key) in props else key
            out[name] = _camel(doc, props.get(name, {}), sub)
        return out
    if isinstance(value, list) and prop.get("type") == "array":
        return [_camel(doc, prop.get("items", {}), v) for v in value]
    return value


def check_body(method: Method, body: Any, *, int_enums: bool) -> None:
    """Raise 400 INVALID_ARGUMENT, naming every field of `body` that departs from the schema."""
    if method.request is None:
        return
    root = body_field(method)
    lines = []
    for issue in discovery.validate(
        method.api, method.request, body, output_only="ignore", int_enums=int_enums
    ):
        if issue.reason == "unknownField":
            where = _location(root, issue.path[:-1])
            at = f" at '{where}'" if where else ""
            lines.append(
                f'Invalid JSON payload received. Unknown name "{issue.path[-1]}"{at}: '
                "Cannot find field."
            )
        else:
            prop = prop_at(method.api, method.request, issue.path)
            value = _value_at(body, issue.path)
            lines.append(
                f"Invalid value at '{_location(root, issue.path)}' ({_type_name(prop)}), "
                f"{json.dumps(value)}"
            )
    if lines:
        raise ApiError(400, "\n".join(lines), reason="invalid", messages=lines)


def _value_at(value: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def strip_output_only(api: str, schema: str, value: Any) -> Any:
    """A copy of `value` without the fields the server sets (clients echo them on updates)."""
    return _strip(discovery.document(api), {"$ref": schema}, value)


def _strip(doc: dict[str, Any], prop: dict[str, Any], value: Any) -> Any:
    if "$ref" in prop:
        prop = doc["schemas"][prop["$ref"]]
    if isinstance(value, dict) and prop.get("type") == "object":
        props = prop.get("properties")
        if props is None:
            extra = prop.get("additionalProperties")
            if extra is None:
                return value
            return {k: _strip(doc, extra, v) for k, v in value.items()}
        return {
            k: _strip(doc, props[k], v)
            for k, v in value.items()
            if k in props and not discovery.is_output_only(props[k])
        }
    if isinstance(value, list) and prop.get("type") == "array":
        return [_strip(doc, prop.get("items", {}), v) for v in value]
    return value


def server_fields(api: str, schema: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """The top-level fields of `body` a full replace keeps: output-only ones and the name."""
    if schema is None:
        return {}
    props = discovery.schema(api, schema).get("properties", {})
    return {
        k: v
        for k, v in body.items()
        if k == "name" or k not in props or discovery.is_output_only(props[k])
    }


@functools.cache
def properties(api: str, schema: str) -> frozenset[str]:
    return frozenset(discovery.schema(api, schema).get("properties", {}))


@functools.cache
def compute_kind(schema: str) -> str | None:
    """`compute#network` for Network: the kind string compute resources carry."""
    prop = discovery.schema("compute", schema).get("properties", {}).get("kind")
    if prop is None:
        return None
    if "default" in prop:
        return prop["default"]
    found = re.search(r"compute#\w+", prop.get("description", ""))
    return found.group(0) if found else None


def to_numbers(api: str, schema: str | None, value: Any) -> Any:
    return value if schema is None else discovery.map_enums(api, schema, value, to_numbers=True)


def to_names(api: str, schema: str | None, value: Any) -> Any:
    return value if schema is None else discovery.map_enums(api, schema, value, to_numbers=False)
