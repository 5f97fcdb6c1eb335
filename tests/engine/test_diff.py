"""Diff: only fields the plan sets; Google's equivalent spellings are equal."""

from __future__ import annotations

from orchestrator.engine.diff import diff

NET = "https://www.googleapis.com/compute/v1/projects/p/global/networks/vpc"


def test_server_defaults_are_not_drift() -> None:
    live = {"name": "s", "ipCidrRange": "10.0.0.0/24", "gatewayAddress": "10.0.0.1",
            "stackType": "IPV4_ONLY"}
    assert diff({"ipCidrRange": "10.0.0.0/24"}, live) == []


def test_changed_field_is_reported_with_its_path() -> None:
    changes = diff({"routingConfig": {"routingMode": "GLOBAL"}},
                   {"routingConfig": {"routingMode": "REGIONAL", "bgpBestPathSelectionMode": "X"}})
    assert [(c.field, c.desired, c.live) for c in changes] == [
        ("routingConfig.routingMode", "GLOBAL", "REGIONAL")
    ]
    assert changes[0].top == "routingConfig"


def test_reference_forms_are_equal() -> None:
    assert diff({"network": "projects/p/global/networks/vpc"}, {"network": NET}) == []
    assert diff({"network": "global/networks/vpc"}, {"network": NET}) == []
    assert diff({"network": "global/networks/other"}, {"network": NET}) != []


def test_int64_as_string_or_number_and_omitted_false() -> None:
    assert diff({"mtu": 1460, "priority": "1000"}, {"mtu": "1460", "priority": 1000}) == []
    assert diff({"disabled": False}, {}) == []
    assert diff({"disabled": True}, {}) != []


def test_list_change_is_reported_once_as_a_whole() -> None:
    desired = {"allowed": [{"IPProtocol": "tcp", "ports": ["443"]}]}
    live = {"allowed": [{"IPProtocol": "tcp", "ports": ["80"]}]}
    changes = diff(desired, live)
    assert [c.field for c in changes] == ["allowed"]
    assert diff(desired, {"allowed": [{"IPProtocol": "tcp", "ports": ["443"]}]}) == []


def test_a_single_port_equals_googles_range_form() -> None:
    assert diff({"portRange": "443"}, {"portRange": "443-443"}) == []
    assert diff({"portRange": "443"}, {"portRange": "443-444"}) != []
    assert diff({"portRange": "80"}, {"portRange": "443-443"}) != []
