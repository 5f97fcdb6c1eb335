"""IAM v1: service accounts, synchronous. A service account is stored under its project and
email; requests may also name it with `-` for the project or by its unique id."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from provision_emulator import errors, formats, schemas
from provision_emulator.apis.base import ApiRules
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.errors import ApiError
from provision_emulator.store import Resource

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

ACCOUNTS = "projects.serviceAccounts"
ACCOUNT_ID = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
EMAIL = re.compile(r"^[^@]+@([a-z][-a-z0-9]*)\.iam\.gserviceaccount\.com$")


class IamRules(ApiRules):
    generic_collections = frozenset({ACCOUNTS})

    def canonical(self, cloud: Cloud, path: str) -> str:
        segments = path.split("/")
        if len(segments) < 4 or segments[2] != "serviceAccounts":
            return path
        account = segments[3]
        found = EMAIL.match(account)
        if found:
            return "/".join(["projects", found.group(1), "serviceAccounts", account, *segments[4:]])
        if account.isdigit():
            for res in cloud.store.in_collection("iam", ACCOUNTS):
                if res.body.get("uniqueId") == account:
                    return "/".join([res.path, *segments[4:]])
        return path

    def not_found(self, path: str, coll: Collection | None = None) -> ApiError:
        return errors.not_found(f"Unknown service account: {path.rsplit('/', 1)[-1]}")


RULES = IamRules("iam")


@RULES.handler("iam.projects.serviceAccounts.create")
def create_service_account(cloud: Cloud, call: Call) -> dict[str, Any]:
    project = call.path.split("/")[1]
    body = call.body or {}
    account_id = body.get("accountId", "")
    if not ACCOUNT_ID.match(account_id):
        raise errors.invalid(
            f"Invalid account ID '{account_id}': it must be 6 to 30 lowercase letters, digits "
            "or hyphens, start with a letter and not end with a hyphen."
        )
    email = f"{account_id}@{project}.iam.gserviceaccount.com"
    path = f"projects/{project}/serviceAccounts/{email}"
    if cloud.store.get("iam", path) is not None:
        raise errors.already_exists(
            f"Service account {account_id} already exists within project projects/{project}."
        )
    given = schemas.strip_output_only("iam", "ServiceAccount", body.get("serviceAccount") or {})
    unique_id = formats.numeric_id("iam", path, call.seq, call.now, digits=21)
    account = {
        **{k: v for k, v in given.items() if k in ("displayName", "description")},
        "name": path,
        "projectId": project,
        "uniqueId": unique_id,
        "email": email,
        "etag": formats.fingerprint("iam", path, call.seq),
        "oauth2ClientId": unique_id,
    }
    cloud.put(Resource("iam", path, ACCOUNTS, account, call.now))
    return account


@RULES.handler("iam.projects.serviceAccounts.patch")
def patch_service_account(cloud: Cloud, call: Call) -> dict[str, Any]:
    path = RULES.canonical(cloud, call.path)
    res = cloud.store.get("iam", path)
    if res is None:
        raise RULES.not_found(path)
    body = call.body or {}
    given = body.get("serviceAccount") or {}
    mask = [m.strip() for m in str(body.get("updateMask", "")).split(",") if m.strip()]
    new = dict(res.body)
    for field in mask or ["displayName", "description"]:
        name = schemas.camel(field)
        if name not in ("displayName", "description"):
            raise errors.invalid(f"Field '{field}' cannot be updated.")
        schemas.set_path(new, [name], given.get(name))
    new["etag"] = formats.fingerprint("iam", path, call.seq)
    cloud.put(Resource("iam", path, ACCOUNTS, new, res.created))
    return new
