"""One member in one role of a resource's IAM policy.

Every change is a read-modify-write carrying the policy's etag, so two writers never lose each
other's member: the loser gets ABORTED, and the engine calls the verb again, which re-reads.
A member's properties are a BindingDelta's `role` and `member`; conditional bindings are left
alone (they are other bindings, whoever made them).

The membership logic works on the policy as Google's JSON; the adapters below differ only in
how one resource's policy is read and written: google.iam.v1 request messages (Cloud Run and
the other gRPC-style clients), or compute's own per-scope methods (a subnetwork's policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import OperationRef, invoke
from orchestrator.gcp.protos import from_json, to_json
from orchestrator.kinds.adapter import Target

# A policy with conditional bindings must be read as version 3 to be written back intact.
POLICY_VERSION = 3


@dataclass(frozen=True)
class _PolicyMember:
    """client: the client that holds the policy methods.
    resource: the template, over `name` and the scope fields, of the resource whose policy it is.
    methods: the discovery id prefix of its policy methods ("compute.subnetworks").
    """

    client: str
    resource: str
    methods: str

    @property
    def calls(self) -> Mapping[str, tuple[str, ...]]:
        change = (f"{self.methods}.getIamPolicy", f"{self.methods}.setIamPolicy")
        return {"read": (f"{self.methods}.getIamPolicy",), "create": change, "delete": change}

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        policy = self._policy(clients, target)
        if policy is None:
            return None
        binding = _binding(policy, target.spec["role"])
        if binding is None or target.spec["member"] not in binding.get("members", []):
            return None
        return {"role": target.spec["role"], "member": target.spec["member"]}

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        if set(body) - {"role", "member"}:
            raise ValueError("an IAM member takes only role and member (no action or condition)")
        policy = self._policy(clients, target)
        if policy is None:
            raise ValueError(
                f"{self._resource(target)} does not exist: its step must come first "
                "(reference it, or list it in depends_on)"
            )
        binding = _binding(policy, target.spec["role"])
        if binding is None:
            binding = {"role": target.spec["role"], "members": []}
            policy.setdefault("bindings", []).append(binding)
        members = binding.setdefault("members", [])
        if target.spec["member"] in members:
            return None
        members.append(target.spec["member"])
        self._set(clients, target, policy)
        return None

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        # Role and member are in the path: a change is another member, never an update.
        raise ValueError("an IAM member cannot be updated in place")

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        policy = self._policy(clients, target)
        binding = _binding(policy, target.spec["role"]) if policy is not None else None
        if binding is None or target.spec["member"] not in binding.get("members", []):
            return None
        binding["members"].remove(target.spec["member"])
        if not binding["members"]:
            policy["bindings"].remove(binding)  # type: ignore[index]
        self._set(clients, target, policy)  # type: ignore[arg-type]
        return None

    def _resource(self, target: Target) -> str:
        return self.resource.format(name=target.name, **target.scope)

    def _policy(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        """The policy as JSON, or None when the resource itself is gone."""
        try:
            return self._get(clients, target)
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise

    def _get(self, clients: ClientFactory, target: Target) -> dict[str, Any]:
        raise NotImplementedError

    def _set(self, clients: ClientFactory, target: Target, policy: dict[str, Any]) -> None:
        """Write the policy back with the etag it was read with: a concurrent writer makes
        this ABORTED."""
        raise NotImplementedError


@dataclass(frozen=True)
class PolicyMemberAdapter(_PolicyMember):
    """For a google-cloud client with google.iam.v1 `get_iam_policy`/`set_iam_policy`;
    `client` is the ClientFactory method that gives it ("run_services")."""

    def _get(self, clients: ClientFactory, target: Target) -> dict[str, Any]:
        from google.iam.v1 import iam_policy_pb2, options_pb2
        from google.protobuf import json_format

        request = iam_policy_pb2.GetIamPolicyRequest(
            resource=self._resource(target),
            options=options_pb2.GetPolicyOptions(requested_policy_version=POLICY_VERSION),
        )
        policy = getattr(clients, self.client)().get_iam_policy(request=request)
        return json_format.MessageToDict(policy)

    def _set(self, clients: ClientFactory, target: Target, policy: dict[str, Any]) -> None:
        from google.iam.v1 import iam_policy_pb2, policy_pb2
        from google.protobuf import json_format

        request = iam_policy_pb2.SetIamPolicyRequest(
            resource=self._resource(target),
            policy=json_format.ParseDict(policy, policy_pb2.Policy()),
        )
        getattr(clients, self.client)().set_iam_policy(request=request)


@dataclass(frozen=True)
class DiscoveryPolicyMemberAdapter(_PolicyMember):
    """For an API whose policy methods the discovery client calls (IAM's service accounts:
    `iam.projects.serviceAccounts.getIamPolicy`, POST with `resource`)."""

    def _get(self, clients: ClientFactory, target: Target) -> dict[str, Any]:
        return invoke(clients.discovery(self.methods.split(".", 1)[0]),
                      f"{self.methods}.getIamPolicy", resource=self._resource(target),
                      options_requestedPolicyVersion=POLICY_VERSION)

    def _set(self, clients: ClientFactory, target: Target, policy: dict[str, Any]) -> None:
        invoke(clients.discovery(self.methods.split(".", 1)[0]), f"{self.methods}.setIamPolicy",
               resource=self._resource(target), body={"policy": policy})


@dataclass(frozen=True)
class RegionalComputePolicyMemberAdapter(_PolicyMember):
    """For a regional compute resource (a subnetwork): its google-cloud-compute client
    (`client`, "SubnetworksClient") names it by project, region and resource name."""

    def _request(self, target: Target) -> dict[str, str]:
        return {
            "project": target.scope["project"],
            "region": target.scope["region"],
            "resource": target.name,
        }

    def _get(self, clients: ClientFactory, target: Target) -> dict[str, Any]:
        policy = clients.compute(self.client).get_iam_policy(
            request={**self._request(target), "options_requested_policy_version": POLICY_VERSION}
        )
        return to_json(policy)

    def _set(self, clients: ClientFactory, target: Target, policy: dict[str, Any]) -> None:
        from google.cloud import compute_v1

        clients.compute(self.client).set_iam_policy(
            request={
                **self._request(target),
                "region_set_policy_request_resource": {
                    "policy": from_json(compute_v1.Policy, policy),
                },
            }
        )


def _binding(policy: dict[str, Any], role: str) -> dict[str, Any] | None:
    """The unconditional binding of the member's role."""
    for binding in policy.get("bindings", []):
        if binding.get("role") == role and "condition" not in binding:
            return binding
    return None
