"""One member in one role of a resource's IAM policy, for any google-cloud client that has
`get_iam_policy`/`set_iam_policy` (google.iam.v1).

Every change is a read-modify-write carrying the policy's etag, so two writers never lose each
other's member: the loser gets ABORTED, and the engine calls the verb again, which re-reads.
A member's properties are a BindingDelta's `role` and `member`; conditional bindings are left
alone (they are other bindings, whoever made them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.errors import from_exception
from orchestrator.gcp.operations import OperationRef
from orchestrator.kinds.adapter import Target

# A policy with conditional bindings must be read as version 3 to be written back intact.
POLICY_VERSION = 3


@dataclass(frozen=True)
class PolicyMemberAdapter:
    """client: the ClientFactory method that gives the client ("run_services").
    resource: the template, over `name` and the scope fields, of the resource whose policy it is.
    """

    client: str
    resource: str

    def read(self, clients: ClientFactory, target: Target) -> dict[str, Any] | None:
        policy = self._get(clients, target)
        if policy is None:
            return None
        binding = _binding(policy, target.spec)
        if binding is None or target.spec["member"] not in binding.members:
            return None
        return {"role": target.spec["role"], "member": target.spec["member"]}

    def create(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], request_id: str
    ) -> OperationRef | None:
        if set(body) - {"role", "member"}:
            raise ValueError("an IAM member takes only role and member (no action or condition)")
        policy = self._get(clients, target)
        if policy is None:
            raise ValueError(
                f"{self._resource(target)} does not exist: its step must come first "
                "(reference it, or list it in depends_on)"
            )
        binding = _binding(policy, target.spec) or policy.bindings.add(role=target.spec["role"])
        if target.spec["member"] in binding.members:
            return None
        binding.members.append(target.spec["member"])
        self._set(clients, target, policy)
        return None

    def update(
        self, clients: ClientFactory, target: Target, body: dict[str, Any], live: dict[str, Any]
    ) -> OperationRef | None:
        # Role and member are in the path: a change is another member, never an update.
        raise ValueError("an IAM member cannot be updated in place")

    def delete(self, clients: ClientFactory, target: Target) -> OperationRef | None:
        policy = self._get(clients, target)
        binding = _binding(policy, target.spec) if policy is not None else None
        if binding is None or target.spec["member"] not in binding.members:
            return None
        binding.members.remove(target.spec["member"])
        if not binding.members:
            policy.bindings.remove(binding)  # type: ignore[union-attr]
        self._set(clients, target, policy)
        return None

    def _resource(self, target: Target) -> str:
        return self.resource.format(name=target.name, **target.scope)

    def _get(self, clients: ClientFactory, target: Target) -> Any:
        """The policy, or None when the resource itself is gone."""
        from google.iam.v1 import iam_policy_pb2, options_pb2

        request = iam_policy_pb2.GetIamPolicyRequest(
            resource=self._resource(target),
            options=options_pb2.GetPolicyOptions(requested_policy_version=POLICY_VERSION),
        )
        try:
            return getattr(clients, self.client)().get_iam_policy(request=request)
        except Exception as exc:
            api = from_exception(exc)
            if api is not None and api.not_found:
                return None
            raise

    def _set(self, clients: ClientFactory, target: Target, policy: Any) -> None:
        from google.iam.v1 import iam_policy_pb2

        request = iam_policy_pb2.SetIamPolicyRequest(resource=self._resource(target), policy=policy)
        # The policy carries the etag it was read with: a concurrent writer makes this ABORTED.
        getattr(clients, self.client)().set_iam_policy(request=request)


def _binding(policy: Any, spec: dict[str, Any]) -> Any:
    """The unconditional binding of the member's role."""
    for binding in policy.bindings:
        if binding.role == spec["role"] and not binding.HasField("condition"):
            return binding
    return None
