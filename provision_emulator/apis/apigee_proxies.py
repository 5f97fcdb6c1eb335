"""Apigee API proxies: bundles imported as numbered revisions (the zip is kept, and answered
again by `revisions.get?format=bundle`), and their deployments to environments.

A deployment is synchronous and PROGRESSING, READY a few simulated seconds later. A revision
whose TargetEndpoint authenticates with Google tokens (`<Authentication>` with `GoogleIDToken` or
`GoogleAccessToken`) deploys only with a `serviceAccount`, and that account must exist. A proxy
with a deployed revision cannot be deleted.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

from provision_emulator import errors, operations
from provision_emulator.apis import iam
from provision_emulator.call import Call, Raw
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.apis.base import ApiRules
    from provision_emulator.cloud import Cloud

PROXIES = "organizations.apis"
REVISIONS = "organizations.apis.revisions"
DEPLOYMENTS = "organizations.environments.apis.revisions.deployments"
BUNDLE = "_bundle"  # the zip, base64, kept beside a revision; never answered as JSON
READY_AT = "_readyAt"  # when a deployment turns READY
PROXY_NAME = re.compile(r"^[a-zA-Z0-9._\-$ %]{1,255}$")
TOKEN_TYPES = ("GoogleIDToken", "GoogleAccessToken")


def _millis(t: float) -> str:
    return str(int(t * 1000))


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("_")}


# --- bundles --------------------------------------------------------------------------------


def _invalid_bundle(why: str) -> errors.ApiError:
    return errors.invalid(f"Bundle is invalid. {why}")


def _bundle_bytes(body: dict[str, Any] | None) -> bytes:
    """The zip of a `google.api.HttpBody`: JSON `data` is base64 (standard or URL-safe)."""
    data = str((body or {}).get("data") or "")
    if not data:
        raise _invalid_bundle("The request carries no zip file.")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_")
    except (binascii.Error, ValueError) as exc:
        raise _invalid_bundle("Its data is not base64.") from exc


def _read_bundle(data: bytes) -> dict[str, ET.Element]:
    """The bundle's XML files by path below `apiproxy/`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = [n for n in archive.namelist() if n.startswith("apiproxy/") and n.endswith(".xml")]
        files = {n.removeprefix("apiproxy/"): ET.fromstring(archive.read(n)) for n in names}
    except (zipfile.BadZipFile, ET.ParseError) as exc:
        raise _invalid_bundle(f"Unable to read it: {exc}.") from exc
    if not any("/" not in n for n in files):
        raise _invalid_bundle("It has no apiproxy/<name>.xml descriptor.")
    return files


def _stems(files: dict[str, ET.Element], folder: str) -> list[str]:
    return sorted(
        n.removeprefix(f"{folder}/").removesuffix(".xml")
        for n in files
        if n.startswith(f"{folder}/")
    )


def _revision_body(
    name: str, revision: str, files: dict[str, ET.Element], now: float
) -> dict[str, Any]:
    basepaths = sorted(
        {
            el.text.strip()
            for path, root in files.items()
            if path.startswith("proxies/")
            for el in root.iter("BasePath")
            if el.text
        }
    )
    return {
        "name": name,
        "revision": revision,
        "basepaths": basepaths,
        "proxies": _stems(files, "proxies"),
        "targets": _stems(files, "targets"),
        "policies": _stems(files, "policies"),
        "createdAt": _millis(now),
        "lastModifiedAt": _millis(now),
        "type": "Application",
        "configurationVersion": {"majorVersion": 4},
    }


def needs_service_account(bundle: bytes) -> bool:
    """Whether a TargetEndpoint of the bundle authenticates with Google-issued tokens."""
    for path, root in _read_bundle(bundle).items():
        if path.startswith("targets/"):
            for auth in root.iter("Authentication"):
                if any(child.tag in TOKEN_TYPES for child in auth):
                    return True
    return False


# --- deployments ----------------------------------------------------------------------------


def _deployment_path(env_path: str, proxy: str, revision: str) -> str:
    return f"{env_path}/apis/{proxy}/revisions/{revision}/deployments"


def _deployed(cloud: Cloud, body: dict[str, Any]) -> dict[str, Any]:
    state = "READY" if cloud.now() >= body[READY_AT] else "PROGRESSING"
    return {**_public(body), "state": state}


def deployments_in(cloud: Cloud, env_path: str) -> list[str]:
    """Paths of the deployments to an environment (which keep it from being deleted)."""
    return [
        r.path
        for r in cloud.store.in_collection("apigee", DEPLOYMENTS)
        if r.path.startswith(f"{env_path}/")
    ]


def _deployments(cloud: Cloud, org: str, **match: str) -> list[dict[str, Any]]:
    found = [
        r.body
        for r in cloud.store.in_collection("apigee", DEPLOYMENTS)
        if r.path.startswith(f"{org}/") and all(r.body.get(k) == v for k, v in match.items())
    ]
    found.sort(key=lambda b: (b["environment"], b["apiProxy"]))
    return [_deployed(cloud, b) for b in found]


def _listed(deployments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"deployments": deployments} if deployments else {}


def _org_path(cloud: Cloud, call: Call) -> str:
    org = f"organizations/{call.path.split('/')[1]}"
    if cloud.store.get("apigee", org) is None:
        raise errors.not_found(f"Resource '{org}' was not found")
    return org


def _revision(cloud: Cloud, org: str, proxy: str, revision: str) -> Resource:
    res = cloud.store.get("apigee", f"{org}/apis/{proxy}/revisions/{revision}")
    if res is None:
        raise errors.not_found(f"API proxy revision {revision} of {proxy} not found in {org}.")
    return res


def import_proxy(cloud: Cloud, call: Call) -> dict[str, Any]:
    org = _org_path(cloud, call)
    name, action = call.arg("name") or "", call.arg("action")
    if not PROXY_NAME.match(name):
        raise errors.invalid(f"Invalid API proxy name '{name}'.")
    if action not in ("import", "validate"):
        raise errors.invalid("action must be import or validate to create a proxy from a bundle.")
    data = _bundle_bytes(call.body)
    files = _read_bundle(data)
    proxy_path = f"{org}/apis/{name}"
    proxy = cloud.store.get("apigee", proxy_path)
    revisions = proxy.body["revision"] if proxy else []
    revision = str(max((int(r) for r in revisions), default=0) + 1)
    body = _revision_body(name, revision, files, call.now)
    if action == "validate":
        return body
    stored = {**body, BUNDLE: base64.b64encode(data).decode()}
    revision_path = f"{proxy_path}/revisions/{revision}"
    cloud.put(Resource("apigee", revision_path, REVISIONS, stored, call.now))
    meta = {"createdAt": _millis(call.now), "subType": "Proxy"}
    meta |= proxy.body["metaData"] if proxy else {}
    meta["lastModifiedAt"] = _millis(call.now)
    owner = {
        "name": name,
        "revision": [*revisions, revision],
        "latestRevisionId": revision,
        "metaData": meta,
        "apiProxyType": "PROGRAMMABLE",
    }
    cloud.put(Resource("apigee", proxy_path, PROXIES, owner, proxy.created if proxy else call.now))
    return body


def get_revision(cloud: Cloud, call: Call) -> dict[str, Any] | Raw:
    org = _org_path(cloud, call)
    _, _, _, proxy, _, revision = call.path.split("/")
    res = _revision(cloud, org, proxy, revision)
    if call.arg("format") == "bundle":
        return Raw(base64.b64decode(res.body[BUNDLE]), content_type="application/octet-stream")
    return _public(res.body)


def delete_revision(cloud: Cloud, call: Call) -> dict[str, Any]:
    org = _org_path(cloud, call)
    _, _, _, proxy, _, revision = call.path.split("/")
    res = _revision(cloud, org, proxy, revision)
    if _deployments(cloud, org, apiProxy=proxy, revision=revision):
        raise errors.failed_precondition(
            f"revision {revision} of API proxy {proxy} is deployed: undeploy it first."
        )
    cloud.remove("apigee", res.path)
    owner = cloud.store.get("apigee", f"{org}/apis/{proxy}")
    if owner is not None:
        left = [r for r in owner.body["revision"] if r != revision]
        body = {**owner.body, "revision": left, "latestRevisionId": left[-1] if left else ""}
        cloud.put(Resource("apigee", owner.path, PROXIES, body, owner.created))
    return _public(res.body)


def delete_proxy(cloud: Cloud, call: Call) -> dict[str, Any]:
    org = _org_path(cloud, call)
    proxy = call.path.rsplit("/", 1)[-1]
    res = cloud.store.get("apigee", call.path)
    if res is None:
        raise errors.not_found(f"Resource '{call.path}' was not found")
    deployed = _deployments(cloud, org, apiProxy=proxy)
    if deployed:
        envs = ", ".join(sorted({d["environment"] for d in deployed}))
        raise errors.failed_precondition(
            f"API proxy {proxy} has revisions deployed to environment(s) {envs}: undeploy them "
            "before deleting it."
        )
    for child in cloud.store.children("apigee", f"{call.path}/revisions"):
        cloud.remove("apigee", child.path)
    cloud.remove("apigee", call.path)
    return res.body


def _check_account(cloud: Cloud, call: Call, name: str, bundle: bytes) -> str | None:
    account = call.arg("serviceAccount")
    if not account and needs_service_account(bundle):
        raise errors.failed_precondition(
            f'deployment validations failed; MISSING_SERVICE_ACCOUNT: Deployment of "{name}" '
            "requires a service account identity, but one was not provided with the request."
        )
    if account:
        path = iam.RULES.canonical(cloud, f"projects/-/serviceAccounts/{account}")
        if cloud.store.get("iam", path) is None:
            raise errors.failed_precondition(
                "deployment validations failed; INVALID_SERVICE_ACCOUNT: service account "
                f'"{account}" does not exist.'
            )
    return account


def deploy(cloud: Cloud, call: Call) -> dict[str, Any]:
    org = _org_path(cloud, call)
    env, proxy, revision = call.path.split("/")[3:8:2]
    env_path = f"{org}/environments/{env}"
    if cloud.store.get("apigee", env_path) is None:
        raise errors.not_found(f"Resource '{env_path}' was not found")
    res = _revision(cloud, org, proxy, revision)
    name = f"{env_path}/apis/{proxy}/revisions/{revision}"
    account = _check_account(cloud, call, name, base64.b64decode(res.body[BUNDLE]))
    others = _deployments(cloud, org, environment=env, apiProxy=proxy)
    if any(d["revision"] != revision for d in others) and call.arg("override") != "true":
        raise errors.invalid(
            f"API proxy {proxy} is already deployed to environment {env} with another revision: "
            "deploy with override=true to replace it."
        )
    for other in others:
        cloud.remove("apigee", _deployment_path(env_path, proxy, other["revision"]))
    ready = operations.duration("apigee", DEPLOYMENTS, cloud.config.durations)
    body: dict[str, Any] = {
        "environment": env,
        "apiProxy": proxy,
        "revision": revision,
        "deployStartTime": _millis(call.now),
        "proxyDeploymentType": "STANDARD",
        READY_AT: call.now + cloud.scaled(ready),
    }
    if account:
        body["serviceAccount"] = account
    path = _deployment_path(env_path, proxy, revision)
    cloud.put(Resource("apigee", path, DEPLOYMENTS, body, call.now))
    return _deployed(cloud, body)


# deploy, getDeployments and undeploy name `.../revisions/R/deployments`: the deployment's path.


def get_deployment(cloud: Cloud, call: Call) -> dict[str, Any]:
    _org_path(cloud, call)
    res = cloud.store.get("apigee", call.path)
    if res is None:
        raise errors.not_found(f"{call.path.removesuffix('/deployments')} is not deployed.")
    return _deployed(cloud, res.body)


def undeploy(cloud: Cloud, call: Call) -> dict[str, Any]:
    _org_path(cloud, call)
    if cloud.store.get("apigee", call.path) is None:
        raise errors.failed_precondition(
            f"{call.path.removesuffix('/deployments')} is not deployed."
        )
    cloud.remove("apigee", call.path)
    return {}


def _lister(**positions: int) -> Callable[[Cloud, Call], dict[str, Any]]:
    """A deployments.list whose parent path names these fields at these segments."""

    def handler(cloud: Cloud, call: Call) -> dict[str, Any]:
        org = _org_path(cloud, call)
        segments = call.path.split("/")
        match = {field: segments[i] for field, i in positions.items()}
        return _listed(_deployments(cloud, org, **match))

    return handler


def register(rules: ApiRules) -> None:
    """Install the proxy and deployment handlers on Apigee's rules (apis.get and apis.list
    stay generic)."""
    handlers = {
        "apis.create": import_proxy,
        "apis.delete": delete_proxy,
        "apis.revisions.get": get_revision,
        "apis.revisions.delete": delete_revision,
        "environments.apis.revisions.deploy": deploy,
        "environments.apis.revisions.getDeployments": get_deployment,
        "environments.apis.revisions.undeploy": undeploy,
        "deployments.list": _lister(),
        "environments.deployments.list": _lister(environment=3),
        "apis.deployments.list": _lister(apiProxy=3),
        "apis.revisions.deployments.list": _lister(apiProxy=3, revision=5),
        "environments.apis.deployments.list": _lister(environment=3, apiProxy=5),
    }
    for method, handler in handlers.items():
        rules.handler(f"apigee.organizations.{method}")(handler)
