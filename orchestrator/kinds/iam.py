"""IAM kinds, through the iam v1 discovery client: service accounts.

A service account is synchronous in Google but eventually consistent: it may read 404 for a
moment after its create returns, which the engine's read-back after create absorbs (bounded by
the step's deadline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.operations import OperationRef, invoke
from orchestrator.kinds.adapter import Target
from orchestrator.kinds.aip import AipAdapter
from orchestrator.kinds.base import MINUTE, Kind
from orchestrator.kinds.iam_member import DiscoveryPolicyMemberAdapter

ACCOUNTS = "iam.projects.serviceAccounts"


@dataclass(frozen=True)
class ServiceAccountAdapter(AipAdapter):
    """Get and delete by name as any AIP resource; create and patch wrap the account in a
    request of their own ({accountId, serviceAccount}, {serviceAccount, updateMask})."""

    collection: str = ACCOUNTS
    waits: bool = False

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        invoke(
            self._service(clients), f"{ACCOUNTS}.create",
            name=f"projects/{target.scope['project']}",
            body={"accountId": target.name, "serviceAccount": body},
        )
        return None

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        invoke(
            self._service(clients), f"{ACCOUNTS}.patch",
            name=target.path,
            body={"serviceAccount": body, "updateMask": ",".join(sorted(body))},
        )
        return None


ACCOUNT = "projects/{project}/serviceAccounts/{name}@{project}.iam.gserviceaccount.com"

KINDS = [
    Kind(
        name="iam.service_account",
        api="iam",
        schema="ServiceAccount",
        # Google's own name for it: the account's email under its project.
        path=ACCOUNT,
        adapter=ServiceAccountAdapter(),
        name_pattern=r"^[a-z]([-a-z0-9]{4,28}[a-z0-9])$",
        mutable=frozenset({"displayName", "description"}),
        name_field="",
        outputs=("path", "email", "uniqueId"),
    ),
    # Who may act as the account: roles/iam.serviceAccountUser lets a member deploy what
    # runs as it (an API proxy's identity, a Cloud Run service's).
    Kind(
        name="iam.service_account_iam_member",
        api="iam",
        schema="BindingDelta",
        path=ACCOUNT + "/iam/{role}/{member}",
        adapter=DiscoveryPolicyMemberAdapter(
            "discovery", ACCOUNT, "iam.projects.serviceAccounts"),
        name_pattern=r"^[a-z]([-a-z0-9]{4,28}[a-z0-9])$",
        mutable=frozenset(),
        name_field="",
        serialize="iam/" + ACCOUNT,
        timeout=5 * MINUTE,
    ),
]
