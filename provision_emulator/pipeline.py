"""From an HTTP request to a `Call`: parameters and body checked as Google's front end checks
them, the project resolved, and the project's access to the API verified."""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import Any

from google_facts import discovery
from google_facts.discovery import Method, Parameter
from google_facts.routing import Match
from provision_emulator import access, catalog, errors, schemas
from provision_emulator.call import Call
from provision_emulator.cloud import Cloud
from provision_emulator.errors import ApiError

# System parameters the GAPIC clients send that are not in the discovery documents.
_EXTRA_SYSTEM = frozenset({"$alt", "$fields", "$prettyPrint", "$callback"})
# APIs a project can always call: the ones used to turn the others on.
ALWAYS_ENABLED = frozenset({"serviceusage", "cloudresourcemanager"})
HTTP_BODY = "GoogleApiHttpBody"
_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


@functools.cache
def _system_parameters(api: str) -> frozenset[str]:
    return frozenset(discovery.document(api).get("parameters", {})) | _EXTRA_SYSTEM


def _unbound(name: str) -> ApiError:
    return errors.invalid(
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
        f"Field '{name}' could not be found in request message."
    )


def _check_value(param: Parameter, value: str) -> None:
    ok = True
    if param.type == "integer":
        ok = re.fullmatch(r"-?\d+", value) is not None
    elif param.type == "boolean":
        ok = value in ("true", "false", "True", "False", "1", "0")
    elif param.enum:
        ok = value in param.enum
    if not ok:
        raise errors.invalid(f"Invalid value for parameter '{param.name}': '{value}'.")


def check_parameters(method: Method, match: Match, query: dict[str, list[str]]) -> None:
    system = _system_parameters(method.api)
    for name, values in query.items():
        param = method.parameters.get(name)
        if param is None:
            if name in system:
                continue
            raise _unbound(name)
        for value in values:
            _check_value(param, value)
    for param in method.parameters.values():
        # proto3: an empty value is an unset one (GAPIC clients send `serviceId=` when unset).
        if param.location == "query" and param.required and not any(query.get(param.name, ())):
            raise errors.invalid(f"Required parameter '{param.name}' is missing.")
        if param.location == "path" and param.pattern:
            value = match.params.get(param.name, "")
            pattern = param.pattern.removeprefix("^").removesuffix("$")
            if re.fullmatch(pattern, value) is None:
                raise ApiError(
                    400,
                    f"Invalid value '{value}'. Values must match the following regular "
                    f"expression: '{param.pattern}'",
                    reason="invalidParameter",
                )


def parse_body(
    method: Method, match: Match, raw: bytes, int_enums: bool, content_type: str = ""
) -> Any:
    if match.upload or not raw.strip():  # media bodies are the rules' to read
        return None
    if method.request == HTTP_BODY and not content_type.startswith("application/json"):
        # google.api.HttpBody: any other body is the message's data, as Google's front end
        # binds it (an Apigee bundle sent as application/octet-stream).
        return {"contentType": content_type, "data": base64.b64encode(raw).decode()}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.invalid(
            f"Invalid JSON payload received. {exc.args[0] if exc.args else 'Unexpected token'}."
        ) from exc
    if method.request is None:
        return body
    body = schemas.camel_keys(method.api, method.request, body)
    schemas.check_body(method, body, int_enums=int_enums)
    return schemas.to_names(method.api, method.request, body) if int_enums else body


def resource_path(method: Method, match: Match) -> str:
    """The path of the resource (or collection) a request acts on. Compute's custom methods
    carry their verb as a trailing segment (`.../operations/{operation}/wait`), cut here."""
    # A media upload path is the method's path below a leading "upload" segment.
    segments = match.segments[1:] if match.upload else match.segments
    segments = segments[catalog.prefix_length(method) :]
    coll = catalog.collections(method.api).get(method.resource)
    if coll is not None and len(segments) > len(coll.pattern):
        segments = segments[: len(coll.pattern)]
    return "/".join(segments)


def project_of(cloud: Cloud, match: Match, path: str) -> str | None:
    project = match.params.get("project")
    if project is None:
        segments = path.split("/")
        if len(segments) > 1 and segments[0] == "projects":
            project = segments[1]
    if not project or project == "-":
        return None
    if project.isdigit():
        return cloud.project_id(project) or project
    if _PROJECT_ID.match(project):
        cloud.project_number(project)
    return project


def consumer(call: Call) -> str | None:
    """Whose quota a call spends: its project's, or for Apigee its organization's (named as
    its project)."""
    if call.project is not None:
        return call.project
    segments = call.path.split("/")
    return segments[1] if len(segments) > 1 and segments[0] == "organizations" else None


def guard(cloud: Cloud, call: Call) -> None:
    """Refuse calls into a project that does not exist, or whose API is not enabled, and calls
    the caller may not make (access.py)."""
    _exists_and_enabled(cloud, call)
    access.check(cloud, call)


def _exists_and_enabled(cloud: Cloud, call: Call) -> None:
    project = call.project
    if project is None:
        return
    # Resource Manager answers for missing projects itself (403, as Google does).
    if call.api != "cloudresourcemanager" and not cloud.project_exists(project):
        raise errors.permission_denied(f"Permission denied on resource project {project}.")
    if not cloud.config.enforce_services or call.api in ALWAYS_ENABLED:
        return
    service = f"{call.api}.googleapis.com"
    state = cloud.store.get("serviceusage", f"projects/{project}/services/{service}")
    if state is not None and state.body.get("state") == "ENABLED":
        return
    number = cloud.project_number(project)
    title = discovery.document(call.api).get("title", service)
    message = (
        f"{title} has not been used in project {number} before or it is disabled. Enable it by "
        f"visiting https://console.developers.google.com/apis/api/{service}/overview?project="
        f"{number} then retry. If you enabled this API recently, wait a few minutes for the "
        "action to propagate to our systems and retry."
    )
    raise ApiError(
        403,
        message,
        reason="accessNotConfigured",
        domain="usageLimits",
        status="PERMISSION_DENIED",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_DISABLED",
                "domain": "googleapis.com",
                "metadata": {"service": service, "consumer": f"projects/{number}"},
            }
        ],
    )
