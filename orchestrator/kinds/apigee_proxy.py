"""`apigee.api_proxy`: a proxy bundle built from the plan, imported as a revision and deployed
with a service account, ready once its deployment is READY."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from google_facts import discovery
from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import ApiError, from_exception
from orchestrator.gcp.operations import OperationRef, invoke
from orchestrator.kinds import proxy_bundle
from orchestrator.kinds.adapter import Target
from orchestrator.kinds.base import MINUTE, Kind, NotReady

# This kind's properties, which no Google API describes, in the discovery format, so that
# plans are validated the same way as Google's resources.
discovery.register_local("provision", Path(__file__).parents[1] / "schemas" / "provision.json")


def _raise_for(response: Any) -> None:
    if response.status_code >= 400:
        try:
            err = response.json().get("error", {})
        except ValueError:
            err = {}
        raise ApiError(response.status_code, err.get("message") or response.text[:300],
                       status=err.get("status", ""))


@dataclass(frozen=True)
class ApiProxyAdapter:
    # A bundle is imported with apis.create and read with apis.revisions.get (format=bundle).
    calls: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "read": (
            "apigee.organizations.apis.get", "apigee.organizations.apis.revisions.get",
            "apigee.organizations.environments.apis.deployments.list",
            "apigee.organizations.environments.apis.revisions.getDeployments",
        ),
        **{verb: (
            "apigee.organizations.apis.get", "apigee.organizations.apis.revisions.get",
            "apigee.organizations.apis.create",
            "apigee.organizations.environments.apis.revisions.deploy",
        ) for verb in ("create", "update")},
        "delete": (
            "apigee.organizations.apis.deployments.list",
            "apigee.organizations.environments.apis.revisions.undeploy",
            "apigee.organizations.apis.delete",
        ),
    }

    def _names(self, target: Target) -> tuple[str, str]:
        org = f"organizations/{target.scope['organization']}"
        return org, f"{org}/apis/{target.name}"

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        svc = clients.discovery("apigee")
        org, proxy = self._names(target)
        try:
            invoke(svc, "apigee.organizations.apis.get", name=proxy)
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise
        env = target.spec.get("environment", "")
        listed = invoke(svc, "apigee.organizations.environments.apis.deployments.list",
                        parent=f"{org}/environments/{env}/apis/{target.name}")
        deployed = listed.get("deployments", [])
        if not deployed:
            return {"name": target.name, "state": "NOT_DEPLOYED"}
        revision = str(deployed[0]["revision"])
        deployment = invoke(
            svc, "apigee.organizations.environments.apis.revisions.getDeployments",
            name=f"{org}/environments/{env}/apis/{target.name}/revisions/{revision}",
        )
        bundle = clients.session().get(
            clients.url("apigee", f"v1/{proxy}/revisions/{revision}"), params={"format": "bundle"}
        )
        _raise_for(bundle)
        return {
            **proxy_bundle.read(bundle.content),
            "name": target.name,
            "environment": env,
            "serviceAccount": deployment.get("serviceAccount", ""),
            "revision": revision,
            "state": deployment.get("state", ""),
        }

    def _import_and_deploy(
        self, clients: ClientFactory, target: Target, body: dict[str, Any]
    ) -> None:
        org, _ = self._names(target)
        bundle = proxy_bundle.build(target.name, body)
        revision = self._imported(clients, target, bundle)
        if revision is None:
            imported = clients.session().post(
                clients.url("apigee", f"v1/{org}/apis"),
                params={"name": target.name, "action": "import"},
                data=bundle, headers={"Content-Type": "application/octet-stream"},
            )
            _raise_for(imported)
            revision = imported.json()["revision"]
        invoke(
            clients.discovery("apigee"), "apigee.organizations.environments.apis.revisions.deploy",
            name=f"{org}/environments/{body['environment']}/apis/{target.name}/revisions/{revision}",
            override=True,
            # A proxy whose targets mint no Google token may deploy without an identity.
            **({"serviceAccount": body["serviceAccount"]} if body.get("serviceAccount") else {}),
        )

    def _imported(self, clients: ClientFactory, target: Target, bundle: bytes) -> str | None:
        """The proxy's latest revision if it holds `bundle`: imported by a run killed before it
        asked for the deployment (each import makes a revision; a second would be a
        duplicate)."""
        _, proxy = self._names(target)
        try:
            latest = invoke(clients.discovery("apigee"), "apigee.organizations.apis.get",
                            name=proxy).get("latestRevisionId")
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise
        if not latest:
            return None
        held = clients.session().get(
            clients.url("apigee", f"v1/{proxy}/revisions/{latest}"), params={"format": "bundle"}
        )
        _raise_for(held)
        return str(latest) if proxy_bundle.read(held.content) == proxy_bundle.read(bundle) else None

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        self._import_and_deploy(clients, target, body)
        return None

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        # A new revision deployed with override replaces the running one without downtime.
        self._import_and_deploy(clients, target, body)
        return None

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        svc = clients.discovery("apigee")
        org, proxy = self._names(target)
        listed = invoke(svc, "apigee.organizations.apis.deployments.list", parent=proxy)
        for dep in listed.get("deployments", []):
            invoke(
                svc, "apigee.organizations.environments.apis.revisions.undeploy",
                name=f"{org}/environments/{dep['environment']}/apis/{target.name}"
                f"/revisions/{dep['revision']}",
            )
        invoke(svc, "apigee.organizations.apis.delete", name=proxy)
        return None


def _deployed(live: dict[str, Any]) -> NotReady | None:
    state = live.get("state", "")
    if state == "READY":
        return None
    if state == "ERROR":
        return NotReady(f"deployment of revision {live.get('revision')} failed", final=True)
    if state == "PROGRESSING":
        return NotReady("deployment PROGRESSING", underway=True)
    return NotReady(f"deployment {state or 'not started'}")


KINDS = [
    Kind(
        name="apigee.api_proxy",
        api="apigee",
        schema="ApiProxy",
        schema_api="provision",
        path="organizations/{organization}/apis/{name}",
        scope=("organization",),
        name_pattern=r"^[A-Za-z0-9._\-$%]{1,255}$",
        adapter=ApiProxyAdapter(),
        runs_as="serviceAccount",
        mutable=frozenset({"basePath", "targets", "serviceAccount"}),
        serialize="organizations/{organization}",
        timeout=10 * MINUTE,
        ready=_deployed,
        outputs=("path", "revision", "state"),
    ),
]
