"""Google's IAM contract for the methods this project calls: the permissions each method needs,
and which predefined roles grant them.

Like `discovery`, this module holds Google's facts and no orchestrator logic, so that the
emulator (which refuses a call its caller may not make) and the engine (which asks Google,
before a change, whether the caller may make the plan's calls) read the same table.

Sources, per method: its REST reference ("Authorization requires the following IAM
permission"): https://cloud.google.com/compute/docs/reference/rest/v1,
https://cloud.google.com/apigee/docs/reference/apis/apigee/rest,
https://cloud.google.com/dns/docs/reference/rest/v1 and /dns/docs/access-control,
https://cloud.google.com/run/docs/reference/iam/permissions,
https://cloud.google.com/service-infrastructure/docs/service-networking/reference/rest,
https://cloud.google.com/service-usage/docs/reference/rest,
https://cloud.google.com/network-intelligence-center/docs/connectivity-tests/concepts/access-control,
https://cloud.google.com/certificate-authority-service/docs/reference/permissions-and-roles,
https://cloud.google.com/certificate-manager/docs/access-control,
https://cloud.google.com/resource-manager/reference/rest/v1/projects/testIamPermissions ("There
are no permission requirements for this API"). Where Google's page names none, the permission of
the same name is assumed, as the per-service permission lists of
https://cloud.google.com/iam/docs/roles-permissions show it exists: Apigee's environments,
instances, their attachments and operations; IAM service accounts; Cloud Run's get, delete,
patch, IAM policy and operations; the Shared VPC methods; and operations.get of Service
Networking and Service Usage.

The roles: iam-roles.json beside this module, Google's predefined role definitions restricted to the
permissions named here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

# Compute Engine names a method's permission after its collection, with these verbs; other
# verbs keep their own name (compute.networks.updatePeering needs compute.networks.updatePeering).
_COMPUTE_VERBS = {
    "insert": "create",
    "patch": "update",
    "update": "update",
    "wait": "get",  # operations: waiting on one is reading it
    "getRouterStatus": "get",
    # It changes nothing; the method's reference page names no permission of its own, so it is
    # taken as a read of the router (an assumption, not Google's word).
    "preview": "get",
}
# Regional collections whose permissions are the zonal collection's: there is no
# compute.regionInstanceGroupManagers.create (regionInstanceGroupManagers.insert needs
# compute.instanceGroupManagers.create; likewise instance groups and autoscalers), while
# regional health checks and backend services have their own.
_COMPUTE_COLLECTIONS = {
    "regionInstanceGroupManagers": "instanceGroupManagers",
    "regionInstanceGroups": "instanceGroups",
    "regionAutoscalers": "autoscalers",
}

# The methods whose permissions do not follow their API's rule (below).
_EXCEPTIONS: dict[str, tuple[str, ...]] = {
    "compute.projects.enableXpnHost": ("compute.organizations.enableXpnHost",),
    "compute.projects.disableXpnHost": ("compute.organizations.disableXpnHost",),
    "compute.projects.enableXpnResource": ("compute.organizations.enableXpnResource",),
    "compute.projects.disableXpnResource": ("compute.organizations.disableXpnResource",),
    # Google's page names none; reading a project's Shared VPC state is reading the project.
    "compute.projects.getXpnResources": ("compute.projects.get",),
    # A managed group's reads and its resize, a group's named ports, a backend service's
    # health: their reference pages name the collection's get or update.
    "compute.regionInstanceGroupManagers.listManagedInstances": (
        "compute.instanceGroupManagers.get",),
    "compute.regionInstanceGroupManagers.resize": ("compute.instanceGroupManagers.update",),
    "compute.regionInstanceGroups.listInstances": ("compute.instanceGroups.get",),
    "compute.regionInstanceGroups.setNamedPorts": ("compute.instanceGroups.update",),
    "compute.backendServices.getHealth": ("compute.backendServices.get",),
    "compute.regionBackendServices.getHealth": ("compute.regionBackendServices.get",),
    "apigee.organizations.environments.apis.revisions.deploy": (
        "apigee.deployments.create", "apigee.proxyrevisions.deploy"),
    "apigee.organizations.environments.apis.revisions.undeploy": (
        "apigee.deployments.delete", "apigee.proxyrevisions.undeploy"),
    "apigee.organizations.environments.apis.revisions.getDeployments": (
        "apigee.deployments.get",),
    "apigee.organizations.environments.apis.deployments.list": ("apigee.deployments.list",),
    "apigee.organizations.apis.deployments.list": ("apigee.deployments.list",),
    "apigee.organizations.apis.revisions.get": ("apigee.proxyrevisions.get",),
    # Debug sessions are trace sessions to IAM; listing a session's transactions reads it
    # (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest/v1/organizations.environments.apis.revisions.debugsessions).
    "apigee.organizations.environments.apis.revisions.debugsessions.data.list": (
        "apigee.tracesessions.get",),
    "apigee.organizations.environments.apis.revisions.debugsessions.data.get": (
        "apigee.tracesessions.get",),
    "apigee.organizations.environments.apis.revisions.debugsessions.deleteData": (
        "apigee.tracesessions.delete",),
    "servicenetworking.services.connections.create": ("servicenetworking.services.addPeering",),
    "servicenetworking.services.connections.patch": ("servicenetworking.services.addPeering",),
    "servicenetworking.services.connections.deleteConnection": (
        "servicenetworking.services.deleteConnection",),
    "servicenetworking.services.connections.list": ("servicenetworking.services.get",),
    "servicenetworking.services.projects.global.networks.peeredDnsDomains.create": (
        "servicenetworking.services.createPeeredDnsDomain",),
    "servicenetworking.services.projects.global.networks.peeredDnsDomains.delete": (
        "servicenetworking.services.deletePeeredDnsDomain",),
    "servicenetworking.services.projects.global.networks.peeredDnsDomains.list": (
        "servicenetworking.services.listPeeredDnsDomains",),
    "cloudresourcemanager.projects.get": ("resourcemanager.projects.get",),
    "cloudresourcemanager.projects.testIamPermissions": (),
    "iam.projects.serviceAccounts.testIamPermissions": (),
}

# Apigee's permissions name collections in lower case, some by another word; dnsZones keeps
# its capital (Google's Apigee page spells it apigee.dnszones, a permission that does not exist).
_APIGEE_COLLECTIONS = {
    "apis": "proxies",
    "envgroups.attachments": "envgroupattachments",
    "instances.attachments": "instanceattachments",
    "dnsZones": "dnsZones",
    "environments.keystores.aliases": "keystorealiases",
    "environments.apis.revisions.debugsessions": "tracesessions",
}

# Permissions held on the organization or folder above a project, never on a project (the
# Shared VPC Admin's, roles/compute.xpnAdmin): a project's testIamPermissions cannot answer
# for them, and not even roles/owner of the project grants them.
ABOVE_PROJECT = frozenset({
    "compute.organizations.enableXpnHost",
    "compute.organizations.disableXpnHost",
    "compute.organizations.enableXpnResource",
    "compute.organizations.disableXpnResource",
})

# What deploying something to run as a service account needs on that account (Cloud Run's
# service identity, an Apigee proxy deployment's serviceAccount).
ACT_AS = "iam.serviceAccounts.actAs"


@functools.cache
def required(method_id: str) -> tuple[str, ...]:
    """The permissions a call of `method_id` needs on its resource (none for a call anyone may
    make). KeyError for a method of an API this module does not know."""
    if method_id in _EXCEPTIONS:
        return _EXCEPTIONS[method_id]
    api, *middle, verb = method_id.split(".")
    if api == "compute":
        collection = _COMPUTE_COLLECTIONS.get(middle[-1], middle[-1])
        return (f"compute.{collection}.{_COMPUTE_VERBS.get(verb, verb)}",)
    if api == "apigee":
        # apigee.organizations[.PARENT].COLLECTION.VERB -> apigee.COLLECTION.VERB
        collection = ".".join(middle[1:]) or "organizations"
        collection = _APIGEE_COLLECTIONS.get(collection, collection.split(".")[-1].lower())
        verb = {"patch": "update", "getCertificate": "get"}.get(verb, verb)
        return (f"apigee.{collection}.{verb}",)
    if api in ("run", "iam"):
        # run.projects.locations.services.create -> run.services.create
        verb = {"wait": "get", "patch": "update"}.get(verb, verb)
        return (f"{api}.{middle[-1]}.{verb}",)
    if api == "dns":
        return (f"dns.{middle[-1]}.{'update' if verb == 'patch' else verb}",)
    if api in ("servicenetworking", "serviceusage") and middle == ["operations"]:
        return (f"{api}.operations.{verb}",)
    if api == "serviceusage":
        return (f"serviceusage.services.{verb}",)
    if api == "certificatemanager":
        # ...locations.certificateIssuanceConfigs.create -> certificatemanager.certissuanceconfigs
        # .create (Google's short collection names, from the access-control page)
        collection = {"certificates": "certs",
                      "certificateIssuanceConfigs": "certissuanceconfigs"}.get(
            middle[-1], middle[-1].lower())
        return (f"certificatemanager.{collection}.{'update' if verb == 'patch' else verb}",)
    if api == "privateca":
        # privateca.projects.locations.caPools.certificateAuthorities.enable ->
        # privateca.certificateAuthorities.update (a CA's state changes are updates; a pool's
        # CA certificates are read with the pool's get: assumed, the reference names none)
        verb = {"patch": "update", "enable": "update", "disable": "update",
                "activate": "update", "undelete": "update", "fetchCaCerts": "get",
                "fetch": "get"}.get(verb, verb)
        return (f"privateca.{middle[-1]}.{verb}",)
    if api == "networkmanagement":
        # ...global.connectivityTests.rerun -> networkmanagement.connectivitytests.rerun
        return (f"networkmanagement.{middle[-1].lower()}.{'update' if verb == 'patch' else verb}",)
    raise KeyError(f"no documented permission for {method_id}")


@functools.cache
def roles() -> dict[str, frozenset[str]]:
    """Each predefined role, with the permissions it grants among those named here."""
    path = Path(__file__).parent / "iam-roles.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: frozenset(role["permissions"]) for name, role in data["roles"].items()}


# Basic roles last: a missing permission is best fixed with the narrowest role that has it.
_BASIC = ("roles/viewer", "roles/editor", "roles/owner")


def roles_granting(permission: str) -> tuple[str, ...]:
    """The predefined roles that grant `permission`, the service's own before the basic ones."""
    ordered = sorted((r for r in roles() if r not in _BASIC), key=lambda r: len(roles()[r]))
    ordered += _BASIC
    return tuple(r for r in ordered if permission in roles().get(r, ()))
