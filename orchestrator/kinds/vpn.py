"""HA VPN tunnels, and the interfaces and BGP peers of a Cloud Router.

A tunnel is usable once Google reports it ESTABLISHED, which needs its peer gateway's tunnel
back to it with the same shared secret: the step waits for that, and at its deadline fails
with Google's `detailedStatus`.

Interfaces and BGP peers have no REST resource of their own: they are elements of the router's
`interfaces[]` and `bgpPeers[]`, written with `routers.patch`, which replaces each list it
sends whole (and has no fingerprint: two writers would overwrite each other). Their mutations
hold the router's lock, which the router's own step shares, so no two writers of one router
interleave in a run; and they are batched (`write_batch`): the step that takes the lock reads
the router once, applies its change and those of every step queued behind it, and writes them in
one patch, so a wheel's hub router gains its dozens of interfaces and peers in a few patches
rather than one operation each.

They go through the compute discovery client: google-cloud-compute's protos drop an empty list
from a request, so a router's last interface or peer could not be removed with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import OperationRef, invoke
from orchestrator.kinds.adapter import ElementChange, Target
from orchestrator.kinds.base import MINUTE, Kind, NotReady
from orchestrator.kinds.compute import _compute

ROUTER = "projects/{project}/regions/{region}/routers/{router}"
ROUTER_LOCK = "routers/{project}/{region}/{router}"
# What the session reports that says whether, and why not, it is up.
SESSION_FIELDS = ("status", "state", "statusReason")


def _established(tunnel: dict[str, Any]) -> NotReady | None:
    if tunnel.get("status") == "ESTABLISHED":
        return None
    # Not final: the other end may be on its way (its step runs beside this one).
    return NotReady(
        f"tunnel {tunnel.get('status', 'without status')}: {tunnel.get('detailedStatus', '')} "
        "(the peer gateway needs a tunnel back on the same interface, with the same shared "
        "secret)"
    )


def _session_up(peer: dict[str, Any]) -> NotReady | None:
    session = peer.get("session") or {}
    if session.get("status") == "UP":
        return None
    reported = ", ".join(f"{k} {session[k]}" for k in SESSION_FIELDS if session.get(k))
    return NotReady(
        f"BGP session {reported or 'not reported'} (both ends must mirror each other: "
        "interfaces in one /30, each peerIpAddress the other's interface address, each peerAsn "
        "the other router's ASN)"
    )


@dataclass(frozen=True)
class RouterElementAdapter:
    """One element, by name, of a router's `field` list ("interfaces", "bgpPeers")."""

    field: str

    @property
    def calls(self) -> Mapping[str, tuple[str, ...]]:
        reads = ("compute.routers.get",) + (
            ("compute.routers.getRouterStatus",) if self.field == "bgpPeers" else ())
        change = ("compute.routers.get", "compute.routers.patch", "compute.regionOperations.wait")
        return {"read": reads, "create": change, "update": change, "delete": change}

    def _request(self, target: Target) -> dict[str, str]:
        return {
            "project": target.scope["project"],
            "region": target.scope["region"],
            "router": target.scope["router"],
        }

    def _router(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        try:
            return invoke(clients.discovery("compute"), "compute.routers.get",
                          **self._request(target))
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        router = self._router(clients, target)
        elements = router.get(self.field, []) if router is not None else []
        return next((e for e in elements if e.get("name") == target.name), None)

    # One change alone is a batch of one (the engine writes these kinds in batches).
    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        return self.write_batch(clients, [ElementChange(self, "create", target, body)],
                                request_id)

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        return self.write_batch(clients, [ElementChange(self, "update", target, body)], "")

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        return self.write_batch(clients, [ElementChange(self, "delete", target, {})], "")

    def parent(self, target: Target) -> str:
        """What a batch writes to, as messages name it."""
        return f"router {target.scope['router']}"

    def describe(self, previewed: dict[str, Any]) -> str:
        """What a preview of the parent shows."""
        return (f"{len(previewed.get('interfaces', []))} interfaces, "
                f"{len(previewed.get('bgpPeers', []))} BGP peers")

    def write_batch(self, clients: ClientFactory, changes: list[ElementChange],
                    request_id: str) -> OperationRef | None:
        """Every change (of interfaces or peers of one router) in one read and one patch; None
        when none changes anything (each create's element already there, each delete's gone)."""
        target = changes[0].target
        router = self._router(clients, target)
        if router is None and all(c.action == "delete" for c in changes):
            return None  # gone with its router, as a single delete finds it
        if router is None:
            raise ValueError(
                f"{ROUTER.format(**target.scope)} does not exist: its step must come first "
                "(reference it in `router:`)"
            )
        lists = _changed(router, changes)
        if not lists:
            return None
        # A retried patch with the same request id is the first one, not a second write.
        op = invoke(clients.discovery("compute"), "compute.routers.patch",
                    **self._request(target), body=lists, **({"requestId": request_id}
                                                          if request_id else {}))
        return OperationRef(type="compute", api="compute", name=op["name"],
                            project=target.scope["project"], region=target.scope["region"])

    def preview_batch(self, clients: ClientFactory,
                      changes: list[ElementChange]) -> dict[str, Any] | None:
        """The router as Google's `routers.preview` says it would be with these changes (its
        refusal raised as any call's), or None when the router is not there yet or nothing
        changes."""
        router = self._router(clients, changes[0].target)
        lists = _changed(router, changes) if router is not None else {}
        if router is None or not lists:
            return None
        previewed = invoke(clients.discovery("compute"), "compute.routers.preview",
                           **self._request(changes[0].target), body={**router, **lists})
        return dict(previewed.get("resource") or {})


def _changed(router: dict[str, Any], changes: list[ElementChange]) -> dict[str, Any]:
    """The router's lists that these changes alter, altered ({} when none does)."""
    lists = {f: list(router.get(f, [])) for f in {c.adapter.field for c in changes}}
    changed: set[str] = set()
    for change in changes:
        elements = lists[change.adapter.field]
        at = next((i for i, e in enumerate(elements) if e.get("name") == change.target.name), None)
        if change.action == "create" and at is None:
            elements.append(change.body)
        elif change.action == "update" and at is not None:
            elements[at] = {**elements[at], **change.body}
        elif change.action == "delete" and at is not None:
            del elements[at]
        else:
            continue  # as a single write would: nothing to do
        changed.add(change.adapter.field)
    return {f: lists[f] for f in sorted(changed)}


@dataclass(frozen=True)
class BgpPeerAdapter(RouterElementAdapter):
    """A BGP peer, read with its session as `routers.getRouterStatus` reports it."""

    field: str = "bgpPeers"

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        peer = super().read(clients, target)
        if peer is None:
            return None
        status = invoke(clients.discovery("compute"), "compute.routers.getRouterStatus",
                        **self._request(target))
        sessions = status.get("result", {}).get("bgpPeerStatus", [])
        found = next((s for s in sessions if s.get("name") == target.name), {})
        return {**peer, "session": {k: found[k] for k in SESSION_FIELDS if k in found}}


def _router_element(name: str, schema: str, collection: str, adapter: Any, **options: Any) -> Kind:
    return Kind(
        name=name,
        api="compute",
        schema=schema,
        path=f"{ROUTER}/{collection}/{{name}}",
        scope=("project", "region", "router"),
        adapter=adapter,
        serialize=ROUTER_LOCK,
        **options,
    )


KINDS = [
    _compute(
        "compute.vpn_tunnel", "VpnTunnel", scope="regional", client="VpnTunnelsClient",
        secret_fields=frozenset({"sharedSecret"}), ready=_established,
    ),
    # Google's interfaces cannot change in place: a changed one is removed and added again.
    _router_element(
        "compute.router_interface", "RouterInterface", "interfaces",
        RouterElementAdapter("interfaces"), timeout=4 * MINUTE,
        releases=frozenset({"linkedVpnTunnel"}),
    ),
    _router_element(
        "compute.router_bgp_peer", "RouterBgpPeer", "bgpPeers", BgpPeerAdapter(),
        mutable=frozenset({
            "advertiseMode", "advertisedGroups", "advertisedIpRanges", "advertisedRoutePriority",
            "peerAsn", "peerIpAddress", "enable", "bfd", "customLearnedIpRanges",
            "customLearnedRoutePriority",
        }),
        ready=_session_up,
        outputs=("path", "session"),
    ),
]
