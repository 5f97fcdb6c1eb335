"""Compute Engine kinds, through google-cloud-compute."""

from __future__ import annotations

from orchestrator.kinds.adapter import ComputeAdapter
from orchestrator.kinds.base import Kind

KINDS = [
    Kind(
        name="compute.network",
        api="compute",
        schema="Network",
        path="projects/{project}/global/networks/{name}",
        adapter=ComputeAdapter("NetworksClient", "network_resource"),
        mutable=frozenset({"description", "routingConfig", "mtu"}),
        outputs=("path", "selfLink"),
    ),
    Kind(
        name="compute.subnetwork",
        api="compute",
        schema="Subnetwork",
        path="projects/{project}/regions/{region}/subnetworks/{name}",
        scope=("project", "region"),
        adapter=ComputeAdapter("SubnetworksClient", "subnetwork_resource", "regional"),
        mutable=frozenset({"description", "privateIpGoogleAccess", "logConfig", "role"}),
        outputs=("path", "selfLink"),
    ),
    Kind(
        name="compute.firewall",
        api="compute",
        schema="Firewall",
        path="projects/{project}/global/firewalls/{name}",
        adapter=ComputeAdapter("FirewallsClient", "firewall_resource"),
        mutable=frozenset(
            {
                "description", "allowed", "denied", "sourceRanges", "destinationRanges",
                "sourceTags", "targetTags", "sourceServiceAccounts", "targetServiceAccounts",
                "priority", "disabled", "logConfig", "direction",
            }
        ),
        outputs=("path", "selfLink"),
    ),
]
