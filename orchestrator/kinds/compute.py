"""Compute Engine kinds, through google-cloud-compute.

Each kind is one `_compute` line: the client, request field and path follow from the schema
name and scope, as they do in Google's own naming.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.operations import OperationRef
from orchestrator.gcp.protos import to_json
from orchestrator.kinds.adapter import ComputeAdapter, Target
from orchestrator.kinds.base import Kind, NotReady

_SCOPES = {
    "global": ("projects/{project}/global", ("project",), ""),
    "regional": ("projects/{project}/regions/{region}", ("project", "region"), "Region"),
    "zonal": ("projects/{project}/zones/{zone}", ("project", "zone"), "Zone"),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _compute(
    name: str,
    schema: str,
    *,
    scope: str = "global",
    mutable: frozenset[str] | None = frozenset(),
    client: str = "",
    plural: str = "",
    adapter: type[ComputeAdapter] = ComputeAdapter,
    **options: object,
) -> Kind:
    """A compute kind. `client` is needed only where Google's client name is not the plural of
    the schema with the scope's prefix (ForwardingRulesClient, GlobalAddressesClient), `plural`
    only where English is irregular (TargetHttpsProxies), `adapter` only where a kind's calls
    go beyond insert, patch and delete."""
    base, scope_fields, prefix = _SCOPES[scope]
    plural = plural or schema + ("es" if schema.endswith("s") else "s")
    return Kind(
        name=name,
        api="compute",
        schema=schema,
        path=f"{base}/{plural[0].lower()}{plural[1:]}/{{name}}",
        scope=scope_fields,
        adapter=adapter(
            client=client or f"{prefix}{plural}Client",
            resource_field=f"{_snake(schema)}_resource",
            message=schema,
            operations=f"compute.{'region' if scope == 'regional' else 'global'}Operations.wait",
        ),
        mutable=mutable,
        outputs=("path", "selfLink"),
        **options,  # type: ignore[arg-type]
    )


def _psc_connected(neg: dict[str, Any]) -> NotReady | None:
    """A Private Service Connect NEG is usable once the service it targets accepts its project
    (an Apigee instance: the projects of its consumerAcceptList). Other NEGs are at once."""
    if neg.get("networkEndpointType") != "PRIVATE_SERVICE_CONNECT":
        return None
    status = (neg.get("pscData") or {}).get("pscConnectionStatus", "")
    if status == "ACCEPTED":
        return None
    project = neg.get("selfLink", "").split("/projects/")[-1].split("/")[0]
    fix = (
        f"{neg.get('pscTargetService')} must accept project {project}: for an Apigee "
        "instance, list it in the instance's consumerAcceptList"
    )
    # Rejected, or closed (its target is gone): waiting changes nothing.
    final = status in ("REJECTED", "CLOSED")
    return NotReady(f"PSC connection {status or 'not yet reported'}: {fix}", final)


# forwardingRules.insert's reference: besides its own permission, the network and subnetwork
# a rule is made in are used (compute.networks.use, compute.subnetworks.use).
_USES_NETWORK = (("create", "compute.networks.use", "network"),
                 ("create", "compute.subnetworks.use", "subnetwork"))

KINDS = [
    _compute(
        "compute.network",
        "Network",
        mutable=frozenset({"description", "routingConfig", "mtu"}),
    ),
    _compute(
        "compute.subnetwork",
        "Subnetwork",
        scope="regional",
        client="SubnetworksClient",
        # Google patches only these; privateIpGoogleAccess has its own method, ipCidrRange
        # only grows through expandIpCidrRange.
        mutable=frozenset({"description", "logConfig", "secondaryIpRanges", "role", "stackType"}),
    ),
    _compute(
        "compute.firewall",
        "Firewall",
        mutable=frozenset(
            {
                "description", "allowed", "denied", "sourceRanges", "destinationRanges",
                "sourceTags", "targetTags", "sourceServiceAccounts", "targetServiceAccounts",
                "priority", "disabled", "logConfig", "direction",
            }
        ),
        # firewalls.patch's and delete's references: the rule changes its network's policy.
        also=(("update", "compute.networks.updatePolicy", ""),
              ("delete", "compute.networks.updatePolicy", "")),
    ),
    _compute("compute.global_address", "Address", client="GlobalAddressesClient"),
    _compute("compute.address", "Address", scope="regional", client="AddressesClient"),
    _compute(
        "compute.region_network_endpoint_group", "NetworkEndpointGroup", scope="regional",
        ready=_psc_connected,
    ),
    _compute(
        "compute.region_backend_service", "BackendService", scope="regional",
        mutable=frozenset({
            "description", "backends", "timeoutSec", "logConfig", "protocol", "portName",
            "securityPolicy", "connectionDraining", "outlierDetection", "iap",
        }),
    ),
    _compute(
        "compute.region_url_map", "UrlMap", scope="regional",
        mutable=frozenset({"description", "defaultService", "hostRules", "pathMatchers", "tests"}),
    ),
    _compute(
        "compute.region_ssl_certificate", "SslCertificate", scope="regional",
        # The certificate may come from a file secret too; the key always does.
        secret_fields=frozenset({"privateKey", "certificate"}),
    ),
    _compute(
        "compute.region_target_https_proxy", "TargetHttpsProxy", scope="regional",
        plural="TargetHttpsProxies",
        mutable=frozenset({"description", "urlMap", "sslCertificates", "sslPolicy"}),
    ),
    _compute(
        "compute.forwarding_rule", "ForwardingRule", scope="regional",
        client="ForwardingRulesClient", mutable=frozenset({"allowGlobalAccess"}),
        also=_USES_NETWORK,
    ),
    _compute(
        "compute.service_attachment", "ServiceAttachment", scope="regional",
        client="ServiceAttachmentsClient",
        mutable=frozenset({
            "description", "connectionPreference", "consumerAcceptLists",
            "consumerRejectLists", "natSubnets", "enableProxyProtocol", "reconcileConnections",
        }),
    ),
]


@dataclass(frozen=True)
class PeeringRoutesAdapter:
    """Route exchange on an existing peering of a network (the one Service Networking made
    for Apigee): `networks.updatePeering`. Destroy puts Google's defaults back (no custom
    routes either way); the peering itself belongs to whoever made it."""

    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": ("compute.networks.get",),
        # (delete reads first: a peering that is gone has nothing to put back)
        **{verb: ("compute.networks.get", "compute.networks.updatePeering",
                  "compute.globalOperations.wait") for verb in ("create", "update", "delete")},
    }

    def _request(self, target: Target) -> dict[str, str]:
        return {"project": target.scope["project"], "network": target.scope["network"]}

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        network = to_json(clients.compute("NetworksClient").get(request=self._request(target)))
        return next((p for p in network.get("peerings", []) if p["name"] == target.name), None)

    def _set(self, clients: ClientFactory, target: Target, peering: dict[str, Any]) -> Any:
        op = clients.compute("NetworksClient").update_peering_unary(
            request={
                **self._request(target),
                "networks_update_peering_request_resource": {"network_peering": peering},
            }
        )
        return ComputeAdapter.operation(op, target)

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef:
        return self._set(clients, target, _snake_keys(body))

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef:
        return self._set(clients, target, _snake_keys(body))

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        if self.read(clients, target) is None:
            return None
        defaults = {"name": target.name, "export_custom_routes": False,
                    "import_custom_routes": False}
        return self._set(clients, target, defaults)


def _snake_keys(body: dict[str, Any]) -> dict[str, Any]:
    return {_snake(k): v for k, v in body.items()}


KINDS.append(
    Kind(
        name="compute.network_peering_routes",
        api="compute",
        schema="NetworkPeering",
        path="projects/{project}/global/networks/{network}/peerings/{name}",
        scope=("project", "network"),
        adapter=PeeringRoutesAdapter(),
        mutable=frozenset({
            "exportCustomRoutes", "importCustomRoutes", "exportSubnetRoutesWithPublicIp",
            "importSubnetRoutesWithPublicIp",
        }),
        # Google takes one peering change per network at a time.
        serialize="networks/{project}/{network}",
        configures=True,
    )
)

# Architecture B: HA VPN between the hub and its spokes, and the northbound external load
# balancer. Tunnels and the router's interfaces and BGP peers are in kinds/vpn.py.
KINDS += [
    _compute("compute.vpn_gateway", "VpnGateway", scope="regional", client="VpnGatewaysClient"),
    _compute(
        "compute.router", "Router", scope="regional", client="RoutersClient",
        # A patch carries only what the plan sets: the router's interfaces and BGP peers, which
        # their own steps write, are never in it. One change per router at a time, theirs too.
        mutable=frozenset({"description", "bgp"}),
        # Google's RouterBgp.asn: "The value will be fixed for this router resource."
        fixed=frozenset({"bgp.asn"}),
        serialize="routers/{project}/{region}/{name}",
    ),
    _compute(
        "compute.backend_service", "BackendService",
        mutable=frozenset({
            "description", "backends", "timeoutSec", "logConfig", "protocol", "portName",
            "securityPolicy", "edgeSecurityPolicy", "connectionDraining", "outlierDetection",
            "iap", "cdnPolicy", "enableCDN",
        }),
    ),
    _compute(
        "compute.url_map", "UrlMap",
        mutable=frozenset({"description", "defaultService", "hostRules", "pathMatchers", "tests"}),
    ),
    # Not waited for until ACTIVE: a managed certificate is provisioned only once its domains
    # resolve to a forwarding rule that serves it, which comes after it.
    _compute(
        "compute.ssl_certificate", "SslCertificate",
        secret_fields=frozenset({"privateKey", "certificate"}),
    ),
    _compute(
        "compute.target_https_proxy", "TargetHttpsProxy", plural="TargetHttpsProxies",
        mutable=frozenset({
            "description", "urlMap", "sslCertificates", "sslPolicy", "quicOverride",
        }),
    ),
    _compute(
        "compute.global_forwarding_rule", "ForwardingRule", client="GlobalForwardingRulesClient",
        also=_USES_NETWORK,
    ),
]
