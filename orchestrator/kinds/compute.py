"""Compute Engine kinds, through google-cloud-compute.

Each kind is one `_compute` line: the client, request field and path follow from the schema
name and scope, as they do in Google's own naming.
"""

from __future__ import annotations

import re

from orchestrator.kinds.adapter import ComputeAdapter
from orchestrator.kinds.base import Kind

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
    **options: object,
) -> Kind:
    """A compute kind. `client` is needed only where Google's client name is not the plural of
    the schema with the scope's prefix (RegionBackendServicesClient, GlobalAddressesClient)."""
    base, scope_fields, prefix = _SCOPES[scope]
    plural = schema[0].lower() + schema[1:] + ("es" if schema.endswith("s") else "s")
    return Kind(
        name=name,
        api="compute",
        schema=schema,
        path=f"{base}/{plural}/{{name}}",
        scope=scope_fields,
        adapter=ComputeAdapter(
            client=client or f"{prefix}{schema}{'es' if schema.endswith('s') else 's'}Client",
            resource_field=f"{_snake(schema)}_resource",
            message=schema,
        ),
        mutable=mutable,
        outputs=("path", "selfLink"),
        **options,  # type: ignore[arg-type]
    )


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
    ),
]
