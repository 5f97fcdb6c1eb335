"""Who calls, and what they may do: the emulator's model of IAM for its one caller.

By default the caller owns everything and nothing is checked. A restricted caller holds the
roles granted to it on projects (`projects/P`), service accounts (`projects/P/serviceAccounts/E`)
and, for what Google grants above projects (Shared VPC), on the organization or a folder
(`organizations/O`, `folders/F`: every emulated project is under them). A role is a predefined
one (google_facts/permissions.py, from Google's role definitions) or a custom one given with its
permissions. A grant on a project holds for what is in it, its service accounts too.

Each call needs the permissions Google documents for its method (google_facts/permissions.py)
on the project it acts in (for Apigee, the organization's, which bears the project's name), and
deploying something that runs as a service account (Cloud Run's service identity, an Apigee
proxy deployment's) needs iam.serviceAccounts.actAs on that account. Refusals are Google's:
403 PERMISSION_DENIED, with compute's "Required 'P' permission for 'R'" (reason forbidden) and
the other APIs' "Permission 'P' denied on resource 'R' (or it may not exist)." with an
IAM_PERMISSION_DENIED ErrorInfo; Cloud Run's for actAs names the account
(https://cloud.google.com/iam/docs/permission-error-messages). testIamPermissions answers from
the same grants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google_facts import permissions
from provision_emulator.errors import ApiError

if TYPE_CHECKING:
    from provision_emulator.call import Call
    from provision_emulator.cloud import Cloud

OWNER = "user:owner@example.com"
_PROJECT_IN = re.compile(r"(?:^|/)projects/([^/]+)")
_ORGANIZATION = re.compile(r"^organizations/([^/]+)")
_ABOVE = ("organizations/", "folders/")


@dataclass(frozen=True)
class Access:
    """caller: the member the emulator takes every request to come from.
    restricted: False, the default: the caller may do anything.
    grants: resource name -> the roles granted to the caller on it.
    roles: custom roles: name -> the permissions it grants.
    """

    caller: str = OWNER
    restricted: bool = False
    grants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"caller": self.caller, "restricted": self.restricted,
                "grants": {k: list(v) for k, v in self.grants.items()},
                "roles": {k: list(v) for k, v in self.roles.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Access:
        unknown = set(data) - {"caller", "restricted", "grants", "roles"}
        if unknown:
            raise ValueError(f"unknown access fields: {', '.join(sorted(unknown))}")
        grants = {str(k): tuple(map(str, v)) for k, v in dict(data.get("grants", {})).items()}
        roles = {str(k): tuple(map(str, v)) for k, v in dict(data.get("roles", {})).items()}
        for name in (r for granted in grants.values() for r in granted):
            if name not in roles and name not in permissions.roles():
                raise ValueError(f"{name}: not a predefined role this emulator knows, nor a "
                                 "custom one given in `roles`")
        return cls(caller=str(data.get("caller", OWNER)),
                   restricted=bool(data.get("restricted", bool(grants))),
                   grants=grants, roles=roles)

    def holds(self, resource: str, permission: str) -> bool:
        """Whether the caller holds `permission` on `resource` (a project or an account)."""
        if not self.restricted:
            return True
        for granted_on, role_names in self.grants.items():
            covers = (resource == granted_on or resource.startswith(granted_on + "/")
                      or granted_on.startswith(_ABOVE))
            if covers and any(permission in self.role_permissions(r) for r in role_names):
                return True
        return False

    def role_permissions(self, role: str) -> frozenset[str]:
        if role in self.roles:
            return frozenset(self.roles[role])
        return permissions.roles().get(role, frozenset())


def check(cloud: Cloud, call: Call) -> None:
    """Refuse the call, as Google does, if the caller lacks what it needs."""
    access: Access = cloud.access
    if not access.restricted:
        return
    try:
        needed = permissions.required(call.method.id)
    except KeyError:  # a method this project never calls: not modelled, not refused
        needed = ()
    project = _project(cloud, call)
    if project is not None:
        for permission in needed:
            if not access.holds(f"projects/{project}", permission):
                raise _denied(call, permission)
    account = _runs_as(cloud, call)
    if account is not None and not _may_act_as(cloud, access, _account_path(cloud, account),
                                               call.now):
        raise ApiError(
            403, f"Permission 'iam.serviceaccounts.actAs' denied on service account {account} "
            "(or it may not exist).", reason="forbidden")


def _may_act_as(cloud: Cloud, access: Access, account: str, now: float) -> bool:
    """actAs held through the caller's grants, or through the account's own IAM policy as
    set with setIamPolicy: a role granted on a service account grants its permissions on it
    (https://cloud.google.com/iam/docs/service-account-permissions)."""
    if access.holds(account, permissions.ACT_AS):
        return True
    policy = cloud.policy(("iam", account), now)
    return any(access.caller in b.get("members", []) and "condition" not in b
               and permissions.ACT_AS in access.role_permissions(b.get("role", ""))
               for b in policy.get("bindings", []))


def test_permissions(cloud: Cloud, resource: str, asked: list[str]) -> list[str]:
    """What testIamPermissions answers: those of `asked` the caller holds on `resource`."""
    resource = _numbered_to_id(cloud, resource)
    return [p for p in asked if cloud.access.holds(resource, p)]


def _project(cloud: Cloud, call: Call) -> str | None:
    """The project a call acts in: its path's (or its body's or query's network's), an Apigee
    organization's, or for organizations.create, its parent's."""
    if call.project:
        return call.project
    org = _ORGANIZATION.match(call.path)
    if call.api == "apigee":
        parent = (call.query.get("parent") or [""])[0]
        found = _PROJECT_IN.search(parent) if parent else None
        return found.group(1) if found else (org.group(1) if org else None)
    body = call.body if isinstance(call.body, dict) else {}
    for where in (call.path, body.get("network", ""), body.get("consumerNetwork", ""),
                  (call.query.get("network") or [""])[0]):
        found = _PROJECT_IN.search(str(where))
        if found:
            return cloud.project_id(found.group(1)) or found.group(1)
    return None


def _runs_as(cloud: Cloud, call: Call) -> str | None:
    body = call.body if isinstance(call.body, dict) else {}
    if call.method.id in ("run.projects.locations.services.create",
                          "run.projects.locations.services.patch"):
        # Without one, a service runs as its project's Compute Engine default account
        # (https://cloud.google.com/run/docs/securing/service-identity).
        named = (body.get("template") or {}).get("serviceAccount")
        number = cloud.project_number(call.project) if call.project else ""
        return named or f"{number}-compute@developer.gserviceaccount.com"
    if call.method.id == "apigee.organizations.environments.apis.revisions.deploy":
        return (call.query.get("serviceAccount") or [""])[0] or None
    return None


def _account_path(cloud: Cloud, email: str) -> str:
    """An account under its project: the one its domain names (NAME@P.iam.gserviceaccount
    .com), or for a default one (NUMBER-compute@developer.gserviceaccount.com) its number's."""
    local, _, domain = email.partition("@")
    if domain == "developer.gserviceaccount.com":
        number = local.split("-", 1)[0]
        project = cloud.project_id(number) or number
    else:
        project = domain.split(".", 1)[0]
    return f"projects/{project}/serviceAccounts/{email}"


def _numbered_to_id(cloud: Cloud, resource: str) -> str:
    found = _PROJECT_IN.search(resource)
    if found and found.group(1).isdigit():
        project = cloud.project_id(found.group(1)) or found.group(1)
        return resource.replace(f"projects/{found.group(1)}", f"projects/{project}", 1)
    return resource


def _denied(call: Call, permission: str) -> ApiError:
    if call.api == "compute":
        return ApiError(403, f"Required '{permission}' permission for '{call.path}'",
                        reason="forbidden")
    resource = f"//{call.api}.googleapis.com/{call.path}"
    return ApiError(
        403, f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
        reason="forbidden", status="PERMISSION_DENIED",
        details=[{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "iam.googleapis.com",
            "metadata": {"permission": permission, "resource": resource},
        }],
    )
