"""References: parsing, finding and resolving, as the engine will at run time."""

from __future__ import annotations

import pytest

from orchestrator.plan import Ref, RefSyntaxError, find_refs, resolve
from orchestrator.plan.refs import parse, substitute_vars

OUTPUTS = {
    ("vpc", ("selfLink",)): "https://compute/v1/projects/p/global/networks/vpc",
    ("gw", ("vpnInterfaces", 0, "ipAddress")): "35.1.2.3",
    ("gw", ("vpnInterfaces",)): [{"id": 0, "ipAddress": "35.1.2.3"}],
    ("vpc", ("mtu",)): 1460,
}
SECRETS = {"vpn": "s3cr3t"}


def lookup(ref: Ref):
    return SECRETS[ref.target] if ref.is_secret else OUTPUTS[(ref.target, ref.path)]


def test_parse_splits_literals_and_references():
    assert parse("plain") == ("plain",)
    assert parse("a ${gw.vpnInterfaces.0.ipAddress}/32") == (
        "a ",
        Ref("step", "gw", ("vpnInterfaces", 0, "ipAddress"), "${gw.vpnInterfaces.0.ipAddress}"),
        "/32",
    )
    ref = parse("${secrets.vpn}")[0]
    assert ref == Ref("secrets", "vpn", (), "${secrets.vpn}")
    assert ref.is_secret and ref.step is None
    assert parse("${vars.x}")[0] == Ref("vars", "x", (), "${vars.x}")
    step_ref = parse("${my-step_2.a.b}")[0]
    assert step_ref.step == "my-step_2" and step_ref.output == "a.b"


def test_find_refs_walks_nested_values():
    value = {"a": ["${vpc.selfLink}", {"b": "x ${gw.vpnInterfaces.0.ipAddress}"}], "c": 5}
    assert [r.text for r in find_refs(value)] == [
        "${vpc.selfLink}",
        "${gw.vpnInterfaces.0.ipAddress}",
    ]
    assert find_refs("no refs, just $$ and $${escaped}") == []


def test_a_whole_string_reference_resolves_to_the_value_as_is():
    assert resolve("${gw.vpnInterfaces}", lookup) == [{"id": 0, "ipAddress": "35.1.2.3"}]
    assert resolve("${vpc.mtu}", lookup) == 1460


def test_embedded_references_are_interpolated_as_text():
    assert resolve("mtu=${vpc.mtu}", lookup) == "mtu=1460"
    assert resolve("${gw.vpnInterfaces.0.ipAddress}/32", lookup) == "35.1.2.3/32"
    assert resolve("x ${gw.vpnInterfaces}", lookup) == 'x [{"id":0,"ipAddress":"35.1.2.3"}]'


def test_resolve_walks_dicts_and_lists_and_keeps_other_values():
    body = {
        "network": "${vpc.selfLink}",
        "peerIp": ["${gw.vpnInterfaces.0.ipAddress}"],
        "sharedSecret": "${secrets.vpn}",
        "mtu": 1500,
        "on": True,
        "none": None,
    }
    assert resolve(body, lookup) == {
        "network": "https://compute/v1/projects/p/global/networks/vpc",
        "peerIp": ["35.1.2.3"],
        "sharedSecret": "s3cr3t",
        "mtu": 1500,
        "on": True,
        "none": None,
    }


def test_escapes_become_literal_text():
    assert resolve("echo $${HOME}", lookup) == "echo ${HOME}"
    assert resolve("$${vpc.mtu} is ${vpc.mtu}", lookup) == "${vpc.mtu} is 1460"
    assert resolve("$$${vpc.mtu}", lookup) == "$${vpc.mtu}"  # "$" then an escape
    assert resolve("cost: $5", lookup) == "cost: $5"


@pytest.mark.parametrize(
    "text",
    [
        "${",
        "${vpc",
        "${}",
        "${9x.y}",
        "${vpc}",
        "${vars}",
        "${vars.a.b}",
        "${secrets.0}",
        "${a b.c}",
        "${a.b c}",
        "${a.}",
    ],
)
def test_malformed_references_raise(text):
    with pytest.raises(RefSyntaxError):
        parse(text)


def test_substitute_vars_keeps_runtime_references_and_escapes():
    values = {"p": "demo", "n": 3, "tpl": "${HOME}", "list": ["a", "${b}"]}
    assert substitute_vars("${vars.n}", values) == (3, [])
    assert substitute_vars("${vars.list}", values) == (["a", "$${b}"], [])
    assert substitute_vars("${vars.p}-${vpc.name}-$${x}", values) == ("demo-${vpc.name}-$${x}", [])
    assert substitute_vars("${vars.tpl}!", values) == ("$${HOME}!", [])
    assert substitute_vars("${vars.q} ${vars.r}", values) == ("${vars.q} ${vars.r}", ["q", "r"])
