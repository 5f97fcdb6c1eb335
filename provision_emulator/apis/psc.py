"""Private Service Connect network endpoint groups (a load balancer's way to a published
service, such as an Apigee instance's service attachment), registered on compute's rules.

A PSC NEG names its target in `pscTargetService`; when that is a service attachment, it must be
in the NEG's region, and the NEG's `pscData.pscConnectionStatus` is what the attachment makes
of the NEG's project, read afresh each time: accepted automatically, or (ACCEPT_MANUAL) when
listed in its `consumerAcceptLists`, rejected when listed in its `consumerRejectLists`, pending
otherwise; closed once the attachment is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provision_emulator import formats
from provision_emulator.apis import compute, ipam
from provision_emulator.call import Call
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

NEGS = "regionNetworkEndpointGroups"
ATTACHMENTS = "serviceAttachments"
PSC = "PRIVATE_SERVICE_CONNECT"


def consumer_status(cloud: Cloud, project: str, attachment: dict[str, Any] | None) -> str:
    """Google's PSC connection status for a consumer project's connection to an attachment."""
    if attachment is None:
        return "CLOSED"
    if attachment.get("connectionPreference") == "ACCEPT_AUTOMATIC":
        return "ACCEPTED"
    names = {project, cloud.project_number(project)}
    if names & {str(p) for p in attachment.get("consumerRejectLists") or []}:
        return "REJECTED"
    accepted = {str(a.get("projectIdOrNum")) for a in attachment.get("consumerAcceptLists") or []}
    return "ACCEPTED" if names & accepted else "PENDING"


@compute.RULES.on_create(NEGS)
def _psc_neg(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    if body.get("networkEndpointType") != PSC:
        return
    target = str(body.get("pscTargetService") or "")
    if not target:
        raise compute.required_field("pscTargetService")
    # A Google API bundle is named by its host name; a published service by its attachment.
    attachment = cloud.resolve(call, target)
    if attachment is not None:
        if attachment.collection != ATTACHMENTS:
            raise compute.invalid_field(
                "pscTargetService", target, "The target must be a service attachment."
            )
        region = compute.region_of(call.path)
        if compute.region_of(attachment.path) != region:
            raise compute.invalid_field(
                "pscTargetService",
                target,
                f"The service attachment must be in the same region as the network endpoint "
                f"group ('{region}').",
            )
    subnet = cloud.resolve(call, str(body.get("subnetwork") or ""))
    if subnet is not None:
        body.setdefault("network", subnet.body.get("network"))
    data = dict(body.get("pscData") or {})
    data["pscConnectionId"] = formats.numeric_id("psc-connection", call.path, call.seq, digits=17)
    if subnet is not None:
        used = {
            (r.body.get("pscData") or {}).get("consumerPscAddress")
            for r in cloud.store.referrers("compute", subnet.path)
        }
        address = ipam.free_host(subnet.body["ipCidrRange"], {u for u in used if u})
        if address:
            data["consumerPscAddress"] = address
    body["pscData"] = data


@compute.RULES.on_read(NEGS)
def _psc_status(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("networkEndpointType") != PSC:
        return body
    target = str(body.get("pscTargetService") or "")
    path = target.removeprefix(compute.BASE_URL)
    if "/" not in path:  # a Google API bundle: nobody there to refuse
        status = "ACCEPTED"
    else:
        attachment = cloud.store.get("compute", path)
        project = res.path.split("/")[1]
        status = consumer_status(cloud, project, attachment.body if attachment else None)
    body["pscData"] = {**(body.get("pscData") or {}), "pscConnectionStatus": status}
    return body


@compute.RULES.on_read(ATTACHMENTS)
def _connected_endpoints(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    """Who connects to a service attachment, as Google lists them (`connectedEndpoints`: each
    consumer's status and PSC connection id): the PSC NEGs that target it and the Apigee
    endpoint attachments (from the organization's tenant project)."""
    connected: list[tuple[str, str]] = []  # (consumer project, PSC connection id)
    for neg in cloud.store.in_collection("compute", NEGS):
        if str(neg.body.get("pscTargetService", "")).removeprefix(compute.BASE_URL) == res.path:
            connection = (neg.body.get("pscData") or {}).get("pscConnectionId", "")
            connected.append((neg.path.split("/")[1], connection))
    for attachment in cloud.store.in_collection("apigee", "organizations.endpointAttachments"):
        if attachment.body.get("serviceAttachment") == res.path:
            org = cloud.store.get("apigee", "/".join(attachment.path.split("/")[:2]))
            tenant = org.body.get("apigeeProjectId", "") if org else ""
            connected.append((tenant, formats.numeric_id("psc-connection", attachment.path,
                                                          digits=17)))
    endpoints = [
        {"status": consumer_status(cloud, project, body), "pscConnectionId": connection}
        for project, connection in connected
    ]
    if endpoints:
        body["connectedEndpoints"] = endpoints
    return body
