"""Certificate Authority Service: a CA pool, and a root certificate authority in it that the
plan wants ENABLED (Google makes it STAGED) and that destroy removes for good (disabled, then
deleted without the grace period, its issued certificates notwithstanding: a destroyed plan
leaves no CA behind to keep its pool from being deleted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.operations import OperationRef, invoke
from orchestrator.kinds.adapter import Target
from orchestrator.kinds.aip import AipAdapter, operation_of
from orchestrator.kinds.base import MINUTE, Kind, NotReady
from orchestrator.kinds.iam_member import DiscoveryPolicyMemberAdapter

POOLS = "privateca.projects.locations.caPools"
AUTHORITIES = f"{POOLS}.certificateAuthorities"
POOL = "projects/{project}/locations/{region}/caPools/{name}"
AUTHORITY = "projects/{project}/locations/{region}/caPools/{pool}/certificateAuthorities/{name}"


@dataclass(frozen=True)
class AuthorityAdapter(AipAdapter):
    @property
    def calls(self) -> Mapping[str, tuple[str, ...]]:
        calls = dict(super().calls)
        calls["create"] = (*calls["create"], f"{AUTHORITIES}.enable")
        calls["delete"] = (f"{AUTHORITIES}.get", f"{AUTHORITIES}.disable", *calls["delete"])
        return calls

    def enable(self, clients: ClientFactory, target: Target,
               live: dict[str, Any]) -> OperationRef | None:
        if live.get("state") not in ("STAGED", "DISABLED"):
            return None
        return operation_of("privateca", invoke(self._service(clients), f"{AUTHORITIES}.enable",
                                                name=target.path, body={}))

    def disable(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        live = self.read(clients, target)
        if live is None or live.get("state") != "ENABLED":
            return None
        return operation_of("privateca", invoke(self._service(clients),
                                                f"{AUTHORITIES}.disable", name=target.path,
                                                body={}))


def _enabled(live: dict[str, Any]) -> NotReady | None:
    state = live.get("state", "")
    return None if state == "ENABLED" else NotReady(f"certificate authority {state}")


_AUTHORITY_ADAPTER = AuthorityAdapter(
    AUTHORITIES,
    create_params={"parent": "{parent}", "certificateAuthorityId": "{name}"},
    delete_params={"skipGracePeriod": "true", "ignoreActiveCertificates": "true"},
)

KINDS = [
    Kind(
        name="privateca.ca_pool",
        api="privateca",
        schema="CaPool",
        path=POOL,
        scope=("project", "region"),
        adapter=AipAdapter(POOLS, create_params={"parent": "{parent}", "caPoolId": "{name}"}),
        mutable=frozenset({"issuancePolicy", "publishingOptions", "labels"}),
        name_field="",
    ),
    Kind(
        name="privateca.certificate_authority",
        api="privateca",
        schema="CertificateAuthority",
        path=AUTHORITY,
        scope=("project", "region", "pool"),
        adapter=_AUTHORITY_ADAPTER,
        mutable=frozenset({"labels"}),
        name_field="",
        ready=_enabled,
        settle=_AUTHORITY_ADAPTER.enable,
        prepare_delete=_AUTHORITY_ADAPTER.disable,
        # The pool's other CAs and certificates wait on it: one change to a pool at a time.
        serialize="privateca/projects/{project}/locations/{region}/caPools/{pool}",
        timeout=20 * MINUTE,
        outputs=("path", "pemCaCertificates"),
    ),
    # Who may request certificates from the pool: Certificate Manager's service agent must
    # (roles/privateca.certificateRequester) to issue a managed certificate through it
    # (https://cloud.google.com/certificate-manager/docs/deploy-google-managed-cas).
    Kind(
        name="privateca.ca_pool_iam_member",
        api="privateca",
        schema_api="iam",
        schema="BindingDelta",
        path=POOL + "/iam/{role}/{member}",
        scope=("project", "region"),
        adapter=DiscoveryPolicyMemberAdapter("discovery", POOL, POOLS),
        mutable=frozenset(),
        name_field="",
        serialize="privateca-iam/" + POOL,
        timeout=5 * MINUTE,
    ),
]
