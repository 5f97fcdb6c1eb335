"""Compute network peerings that a producer (Service Networking) makes on a consumer's network.

A peering is stored beside its network (`projects/P/global/networks/N/peerings/NAME`), read back
in the network's `peerings[]`, and refers to the network, so the network cannot be deleted while
it has one (Google's resourceInUseByAnotherResource, naming the peering). This module also
answers compute's `networks.updatePeering` and `networks.removePeering`, which compute's own rules
leave unimplemented; it registers them on compute's rules when imported (servicenetworking
imports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provision_emulator import errors, formats, generic
from provision_emulator.apis import compute
from provision_emulator.call import Call
from provision_emulator.errors import ApiError
from provision_emulator.operations import Operation
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

PEERINGS = "networks.peerings"
# What updatePeering may change; the rest is the producer's.
UPDATABLE = (
    "exportCustomRoutes",
    "importCustomRoutes",
    "exportSubnetRoutesWithPublicIp",
    "importSubnetRoutesWithPublicIp",
    "stackType",
    "updateStrategy",
)


def path_of(network_path: str, name: str) -> str:
    return f"{network_path}/peerings/{name}"


def find(cloud: Cloud, network_path: str, name: str) -> dict[str, Any] | None:
    res = cloud.store.get("compute", path_of(network_path, name))
    return res.body if res else None


def put(cloud: Cloud, network_path: str, name: str, peer_network: str, now: float) -> None:
    """An ACTIVE peering to `peer_network` (a network URL), as a producer makes it."""
    stamp = formats.compute_time(now)
    body = {
        "name": name,
        "network": peer_network,
        "state": "ACTIVE",
        "stateDetails": f"[{stamp}]: Connected.",
        "autoCreateRoutes": True,
        "exchangeSubnetRoutes": True,
        "exportCustomRoutes": False,
        "importCustomRoutes": False,
        "exportSubnetRoutesWithPublicIp": False,
        "importSubnetRoutesWithPublicIp": False,
        "stackType": "IPV4_ONLY",
        "peerMtu": 1460,
    }
    path = path_of(network_path, name)
    cloud.put(Resource("compute", path, PEERINGS, body, now, (("compute", network_path),)))


def remove(cloud: Cloud, network_path: str, name: str) -> None:
    cloud.remove("compute", path_of(network_path, name))


def _no_peering(name: str) -> ApiError:
    return errors.invalid(f"There is no peering ({name}) for the network.")


@compute.RULES.on_read("networks")
def _show_peerings(cloud: Cloud, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    found = [r.body for r in cloud.store.children("compute", f"{res.path}/peerings")]
    if found:
        body["peerings"] = found
    return body


def _network(cloud: Cloud, call: Call) -> Resource:
    path = compute.RULES.canonical(cloud, call.path)
    res = cloud.store.get("compute", path)
    if res is None:
        raise compute.RULES.not_found(path)
    generic.refuse_if_busy(cloud, call, path)
    return res


@compute.RULES.handler("compute.networks.updatePeering")
def update_peering(cloud: Cloud, call: Call) -> dict[str, Any]:
    network = _network(cloud, call)
    given = (call.body or {}).get("networkPeering") or {}
    name = str(given.get("name") or "")
    if not name:
        raise compute.required_field("networkPeering.name")
    if find(cloud, network.path, name) is None:
        raise _no_peering(name)
    changes = {k: given[k] for k in UPDATABLE if k in given}
    op = cloud.start_operation(
        call,
        target=network.path,
        collection="networks",
        effect="updatePeering",
        payload={"peering": path_of(network.path, name), "changes": changes},
    )
    return compute.RULES.render_operation(cloud, op, call.int_enums)


@compute.RULES.effect("updatePeering")
def _peering_updated(cloud: Cloud, op: Operation) -> None:
    res = cloud.store.get("compute", op.payload["peering"])
    if res is not None:
        body = {**res.body, **op.payload["changes"]}
        cloud.put(Resource("compute", res.path, PEERINGS, body, res.created, res.refs))


@compute.RULES.handler("compute.networks.removePeering")
def remove_peering(cloud: Cloud, call: Call) -> dict[str, Any]:
    network = _network(cloud, call)
    name = str((call.body or {}).get("name") or "")
    if find(cloud, network.path, name) is None:
        raise _no_peering(name)
    op = cloud.start_operation(
        call,
        target=network.path,
        collection="networks",
        effect="removePeering",
        payload={"network": network.path, "name": name},
    )
    return compute.RULES.render_operation(cloud, op, call.int_enums)


@compute.RULES.effect("removePeering")
def _peering_removed(cloud: Cloud, op: Operation) -> None:
    remove(cloud, op.payload["network"], op.payload["name"])
