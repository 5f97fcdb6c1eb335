"""Google's published API contract: the discovery documents shipped in google-api-python-client.

Both the plan validator and the emulator read routes and schemas from here. It lives in
`google_facts`, the package the emulator and the orchestrator share, because it holds no logic of
either: only Google's own documents and the JSON type rules they imply.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The API versions this project speaks, keyed by the discovery document's name.
API_VERSIONS: dict[str, str] = {
    "compute": "v1",
    "run": "v2",
    "dns": "v1",
    "apigee": "v1",
    "servicenetworking": "v1",
    "iam": "v1",
    "cloudresourcemanager": "v3",
    "serviceusage": "v1",
    "storage": "v1",
    "secretmanager": "v1",
    "networkmanagement": "v1",
    "privateca": "v1",
    "certificatemanager": "v1",
}


@functools.cache
def _documents_dir() -> Path:
    # find_spec locates the package without importing it (its import pulls in httplib2 et al.).
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("google-api-python-client is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "discovery_cache" / "documents"


# Documents in the same format for what no Google API describes, registered by their owner
# (the orchestrator's kinds whose resource it builds itself, such as an API proxy bundle).
LOCAL_DOCUMENTS: dict[str, Path] = {}


def register_local(name: str, path: Path) -> None:
    """Serve `path`, a document in the discovery format, as `document(name)`."""
    LOCAL_DOCUMENTS[name] = path


@functools.cache
def document(api: str, version: str | None = None) -> dict[str, Any]:
    """The raw discovery document of one API version."""
    if api in LOCAL_DOCUMENTS:
        path = LOCAL_DOCUMENTS[api]
    else:
        path = _documents_dir() / f"{api}.{version or API_VERSIONS[api]}.json"
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# Methods that read though they are not GETs (see Method.mutating).
READ_ONLY_NAMES = frozenset(
    {
        "get",
        "list",
        "wait",
        "getIamPolicy",
        "testIamPermissions",
        "aggregatedList",
        "batchGet",
        "search",
        # compute's routers.preview: "Calling this method does NOT create or update the router."
        "preview",
        # compute's POST reads: "Gets the most recent health check results" (getHealth),
        # "Lists the instances in the managed instance group" (listManagedInstances), "Lists
        # the instances in the specified instance group" (listInstances).
        "getHealth",
        "listManagedInstances",
        "listInstances",
    }
)


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path" or "query"
    type: str
    required: bool = False
    repeated: bool = False
    enum: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True)
class Method:
    """One REST method, with its path relative to the API's root (servicePath included)."""

    api: str
    version: str
    id: str
    http_method: str
    path: str  # e.g. "compute/v1/projects/{project}/global/networks" or "v1/{+name}"
    # The same with every parameter as one segment: "v1/organizations/{organizationsId}".
    flat_path: str
    parameters: dict[str, Parameter] = field(default_factory=dict)
    request: str | None = None
    response: str | None = None
    media_upload_path: str | None = None
    supports_media_download: bool = False

    @property
    def name(self) -> str:
        """The last part of the id: insert, get, create, patch, ..."""
        return self.id.rsplit(".", 1)[-1]

    @property
    def resource(self) -> str:
        """The dotted resource chain: "networks", "organizations.endpointAttachments"."""
        return ".".join(self.id.split(".")[1:-1])

    @property
    def mutating(self) -> bool:
        """Whether it may change anything. A GET never does (apigee's getDeployments, ...);
        the POST reads (compute's operations wait, ...) are named in READ_ONLY_NAMES."""
        return self.http_method != "GET" and self.name not in READ_ONLY_NAMES


def _walk(resources: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for res in resources.values():
        yield from res.get("methods", {}).values()
        yield from _walk(res.get("resources", {}))


@functools.cache
def methods(api: str, version: str | None = None) -> tuple[Method, ...]:
    version = version or API_VERSIONS[api]
    doc = document(api, version)
    service_path = doc.get("servicePath", "")
    out = []
    for m in _walk(doc.get("resources", {})):
        params = {
            name: Parameter(
                name=name,
                location=p.get("location", "query"),
                type=p.get("type", "string"),
                required=bool(p.get("required")),
                repeated=bool(p.get("repeated")),
                enum=tuple(p.get("enum", ())),
                pattern=p.get("pattern"),
            )
            for name, p in m.get("parameters", {}).items()
        }
        upload = m.get("mediaUpload", {}).get("protocols", {}).get("simple", {}).get("path")
        out.append(
            Method(
                api=api,
                version=version,
                id=m["id"],
                http_method=m["httpMethod"],
                path=service_path + m["path"],
                flat_path=service_path + m.get("flatPath", m["path"]),
                parameters=params,
                request=m.get("request", {}).get("$ref"),
                response=m.get("response", {}).get("$ref"),
                media_upload_path=upload.lstrip("/") if upload else None,
                supports_media_download=bool(m.get("supportsMediaDownload")),
            )
        )
    return tuple(out)


@functools.cache
def method(api: str, method_id: str) -> Method:
    for m in methods(api):
        if m.id == method_id:
            return m
    raise KeyError(method_id)


def schema(api: str, name: str, version: str | None = None) -> dict[str, Any]:
    return document(api, version)["schemas"][name]


def is_output_only(prop: dict[str, Any]) -> bool:
    if prop.get("readOnly"):
        return True
    desc = prop.get("description", "")
    return desc.startswith("[Output Only]") or desc.startswith("Output only.")


# --- JSON type checking -------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One way a JSON value departs from its schema. `path` is the field path from the root."""

    path: tuple[str | int, ...]
    message: str
    reason: str = "invalid"  # "unknownField", "outputOnly", "invalidType", "invalidEnum"

    @property
    def dotted(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


_INT_RE = re.compile(r"^-?\d+$")


def validate(
    api: str,
    schema_name: str,
    value: Any,
    *,
    output_only: str = "ignore",
    int_enums: bool = False,
    version: str | None = None,
) -> list[Issue]:
    """Check `value` against a discovery schema.

    output_only: "ignore" (as Google does on writes that echo a read), or "reject" (a plan that
    sets a server-computed field is a mistake worth naming).
    int_enums: accept enum values as integers (clients that ask for `enum-encoding=int`).
    """
    doc = document(api, version)
    issues: list[Issue] = []
    _check(doc, {"$ref": schema_name}, value, (), issues, output_only, int_enums)
    return issues


def _check(
    doc: dict[str, Any],
    prop: dict[str, Any],
    value: Any,
    path: tuple[str | int, ...],
    issues: list[Issue],
    output_only: str,
    int_enums: bool,
) -> None:
    if "$ref" in prop:
        prop = doc["schemas"][prop["$ref"]]
    kind = prop.get("type", "any")
    if value is None:
        return  # JSON null means "unset" in Google's JSON mapping.
    if kind == "object":
        if not isinstance(value, dict):
            message = f"expected an object, got {_json_type(value)}"
            issues.append(Issue(path, message, "invalidType"))
            return
        props = prop.get("properties")
        extra = prop.get("additionalProperties")
        for key, sub in value.items():
            subpath = (*path, key)
            if props is not None and key in props:
                if is_output_only(props[key]) and output_only == "reject":
                    issues.append(Issue(subpath, "is output only: set by the server", "outputOnly"))
                    continue
                _check(doc, props[key], sub, subpath, issues, output_only, int_enums)
            elif extra is not None:
                _check(doc, extra, sub, subpath, issues, output_only, int_enums)
            elif props is None:
                continue  # a free-form object (e.g. google.protobuf.Struct)
            else:
                issues.append(Issue(subpath, "unknown field", "unknownField"))
        return
    if kind == "array":
        if not isinstance(value, list):
            issues.append(Issue(path, f"expected a list, got {_json_type(value)}", "invalidType"))
            return
        for i, item in enumerate(value):
            _check(doc, prop.get("items", {}), item, (*path, i), issues, output_only, int_enums)
        return
    if kind == "string":
        fmt = prop.get("format", "")
        if fmt in ("int64", "uint64"):
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and _INT_RE.match(value) is not None
            )
            if not ok:
                issues.append(Issue(path, f"expected an integer, got {value!r}", "invalidType"))
            return
        enum = prop.get("enum")
        if enum and int_enums and isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < len(enum):
                issues.append(Issue(path, f"invalid enum number {value}", "invalidEnum"))
            return
        if not isinstance(value, str):
            issues.append(Issue(path, f"expected a string, got {_json_type(value)}", "invalidType"))
            return
        if enum and value not in enum:
            allowed = ", ".join(e for e in enum if not e.endswith("_UNSPECIFIED"))
            issues.append(Issue(path, f"invalid value {value!r}; one of: {allowed}", "invalidEnum"))
        return
    if kind == "integer":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and _INT_RE.match(value) is not None
        )
        if not ok:
            issues.append(Issue(path, f"expected an integer, got {value!r}", "invalidType"))
        return
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            issues.append(Issue(path, f"expected a number, got {value!r}", "invalidType"))
        return
    if kind == "boolean" and not isinstance(value, bool):
        issues.append(Issue(path, f"expected true or false, got {value!r}", "invalidType"))


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def map_enums(api: str, schema_name: str, value: Any, *, to_numbers: bool) -> Any:
    """A copy of `value` with its enum fields as numbers, or back to names.

    Cloud Run's REST clients ask for `$alt=json;enum-encoding=int`: they send enums as numbers and
    expect numbers back, while the stored resource keeps Google's names.
    """
    doc = document(api)
    return _map_enums(doc, {"$ref": schema_name}, value, to_numbers)


def _map_enums(doc: dict[str, Any], prop: dict[str, Any], value: Any, to_numbers: bool) -> Any:
    if "$ref" in prop:
        prop = doc["schemas"][prop["$ref"]]
    kind = prop.get("type")
    if kind == "object" and isinstance(value, dict):
        props = prop.get("properties", {})
        extra = prop.get("additionalProperties")
        return {
            k: _map_enums(doc, props.get(k) or extra or {}, v, to_numbers) for k, v in value.items()
        }
    if kind == "array" and isinstance(value, list):
        return [_map_enums(doc, prop.get("items", {}), v, to_numbers) for v in value]
    enum = prop.get("enum")
    if enum:
        if to_numbers and isinstance(value, str) and value in enum:
            return enum.index(value)
        if not to_numbers and isinstance(value, int) and 0 <= value < len(enum):
            return enum[value]
    return value
