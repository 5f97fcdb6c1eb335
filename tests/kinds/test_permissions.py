"""What each kind declares it calls maps to permissions Google documents and roles grant."""

from __future__ import annotations

import pytest

from google_facts import permissions
from orchestrator import kinds


@pytest.mark.parametrize("name", kinds.names())
def test_every_action_of_a_kind_needs_permissions_some_predefined_role_grants(name: str) -> None:
    kind = kinds.get(name)
    assert kind is not None
    actions = ["create", "delete", "read"] + (["update"] if kind.mutable else [])
    for action in actions:
        needed = list(kind.permissions(action)) + [p for _, p, _ in kind.also]
        assert needed or (action == "delete" and kind.left_on_destroy), (name, action)
        for permission in needed:
            assert permissions.roles_granting(permission), (name, action, permission)


def test_a_method_of_no_known_api_has_no_made_up_permission() -> None:
    with pytest.raises(KeyError):
        permissions.required("bigquery.datasets.insert")
