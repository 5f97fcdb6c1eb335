"""How a kind's API calls are made: one adapter per API family."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComputeAdapter:
    """A compute resource through its google-cloud-compute client ("NetworksClient").

    resource_field: the insert request's body argument ("network_resource").
    scope: "global", "regional" or "zonal": which operation collection its mutations use.
    """

    client: str
    resource_field: str
    scope: str = "global"


Adapter = ComputeAdapter
