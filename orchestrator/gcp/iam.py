"""Asking Google which permissions the caller holds: `testIamPermissions` of Resource Manager
for a project, of IAM for a service account. Neither needs a permission of its own (Resource
Manager's reference: "There are no permission requirements for this API")."""

from __future__ import annotations

from typing import Any

from orchestrator.gcp.operations import invoke

METHODS = {
    "project": ("cloudresourcemanager", "cloudresourcemanager.projects.testIamPermissions"),
    "account": ("iam", "iam.projects.serviceAccounts.testIamPermissions"),
}


def held_permissions(clients: Any, resource: str, permissions: list[str]) -> set[str]:
    """Those of `permissions` the caller holds on `resource` ("projects/P", or
    "projects/P/serviceAccounts/EMAIL"). Google's refusals are raised as the client raises them;
    a transport that cannot reach Google as ConnectionError, saying which API (httplib2 raises
    types of its own besides OSError)."""
    from httplib2 import HttpLib2Error

    api, method = METHODS["account" if "/serviceAccounts/" in resource else "project"]
    try:
        answer = invoke(clients.discovery(api), method, resource=resource,
                        body={"permissions": permissions})
    except (OSError, HttpLib2Error) as exc:
        raise ConnectionError(f"could not reach {api} to check your permissions ({exc})") from exc
    return set(answer.get("permissions", []))
