"""The live reads `verify` makes: GETs and lists through Google's discovery clients, each made
once per run (a path's hops and the next path's share them), and nothing written.

A read Google refuses (403), or that cannot be made, is not a verdict about the hop: it raises
Unreadable, which the hop reports as `unknown` with Google's words.
"""

from __future__ import annotations

import json
import re
from typing import Any

from google_facts import discovery
from orchestrator.gcp import retry
from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import DeadlineExceeded, from_exception
from orchestrator.gcp.operations import invoke

# How long one read may keep retrying Google's transient errors, in the run's clock's seconds.
READ_DEADLINE = 120.0

_COMPUTE_LINK = re.compile(
    r"projects/(?P<project>[^/]+)/(?:(?:regions/(?P<region>[^/]+))|(?:zones/(?P<zone>[^/]+))"
    r"|global)/(?P<collection>[A-Za-z]+)/(?P<name>[^/]+)$"
)


class Unreadable(Exception):
    """A read that did not answer: Google refused it, or it could not be made."""


def compute_path(link: str) -> str:
    """A compute reference (a full URL on any host, or a partial path) as the path the ledger
    records: "projects/P/regions/R/forwardingRules/N"."""
    return "projects/" + link.split("projects/", 1)[1] if "projects/" in link else link


def last(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


def project_of(resource: dict[str, Any]) -> str:
    """The project of a compute resource, from its self link."""
    return compute_path(resource["selfLink"]).split("/")[1]


class Live:
    def __init__(self, clients: ClientFactory, clock: Any) -> None:
        self.clients = clients
        self.clock = clock
        self._cache: dict[tuple[Any, ...], Any] = {}

    def _invoke(self, method_id: str, params: dict[str, Any]) -> dict[str, Any] | None:
        key = (method_id, json.dumps(params, sort_keys=True))
        if key in self._cache:
            return self._cache[key]
        api = method_id.split(".", 1)[0]

        def call() -> Any:
            return invoke(self.clients.discovery(api), method_id, **params)

        try:
            found = retry.call(call, deadline=self.clock.now() + READ_DEADLINE, clock=self.clock)
        except DeadlineExceeded as exc:
            raise Unreadable(f"{method_id} did not answer: {exc}") from exc
        except Exception as exc:
            err = from_exception(exc)
            if err is not None and err.not_found:
                found = None
            elif err is not None:
                raise Unreadable(f"{method_id} was refused: {err}") from exc
            elif isinstance(exc, (ConnectionError, OSError)):
                raise Unreadable(f"{method_id} could not be made: {exc}") from exc
            else:
                raise
        self._cache[key] = found
        return found

    def get(self, method_id: str, **params: Any) -> dict[str, Any] | None:
        """The resource, or None when Google says it is not there."""
        return self._invoke(method_id, params)

    def items(self, method_id: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item a list method returns, across pages; [] when the parent is not there."""
        out: list[dict[str, Any]] = []
        token = None
        while True:
            page = self._invoke(method_id, {**params, **({"pageToken": token} if token else {})})
            if page is None:
                return out
            out.extend(page.get(key, []))
            token = page.get("nextPageToken")
            if not token:
                return out

    def compute(self, link: str) -> dict[str, Any] | None:
        """A compute resource by its self link or partial path."""
        match = _COMPUTE_LINK.search(compute_path(link))
        if match is None:
            raise Unreadable(f"{link} is not a compute resource path")
        collection = match["collection"]
        scope = {k: match[k] for k in ("project", "region", "zone") if match[k]}
        where = "region" if "region" in scope else "zone" if "zone" in scope else "global"
        method_id = self._compute_method(collection, where)
        method = discovery.method("compute", method_id)
        id_param = next(p for p in method.parameters
                        if p not in ("project", "region", "zone")
                        and method.parameters[p].location == "path")
        return self.get(method_id, **scope, **{id_param: match["name"]})

    @staticmethod
    def _compute_method(collection: str, where: str) -> str:
        """The get method of a compute collection: the regional or global variant where Compute
        has one ("regionTargetHttpsProxies", "globalForwardingRules"), else the collection's
        own."""
        if where in ("region", "global"):
            variant = f"compute.{where}{collection[0].upper()}{collection[1:]}.get"
            if any(m.id == variant for m in discovery.methods("compute")):
                return variant
        return f"compute.{collection}.get"


    def kind(self, kind: Any, target: Any) -> dict[str, Any] | None:
        """A resource as its kind reads it (what a kind assembles from several calls, such as
        an API proxy's deployed bundle)."""
        key = ("kind", kind.name, target.path)
        if key not in self._cache:
            try:
                self._cache[key] = retry.call(
                    lambda: kind.adapter.read(self.clients, target),
                    deadline=self.clock.now() + READ_DEADLINE, clock=self.clock,
                )
            except Exception as exc:
                err = from_exception(exc)
                if err is None and not isinstance(exc, (ConnectionError, OSError,
                                                        DeadlineExceeded)):
                    raise
                raise Unreadable(f"{target.path} could not be read: {err or exc}") from exc
        return self._cache[key]
