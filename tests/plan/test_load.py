"""Good plans: what the model holds after loading."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.plan import Plan, Position, SecretRef, load_plan, load_plan_text


def test_reference_plan_loads(sample):
    plan = load_plan(sample)
    assert plan.name == "network-basics"
    assert plan.vars == {"project": "demo-project", "region": "europe-west1"}
    assert plan.defaults == {"project": "demo-project", "region": "europe-west1"}
    assert [s.id for s in plan.steps] == ["vpc", "subnet", "allow-internal"]
    vpc, subnet, firewall = plan.steps
    assert vpc.kind == "compute.network" and vpc.name == "demo-vpc"
    assert vpc.scope == {"project": "demo-project"}  # a global kind takes no region
    assert subnet.scope == {"project": "demo-project", "region": "europe-west1"}
    assert subnet.properties["network"] == "${vpc.selfLink}"  # resolved at run time
    assert subnet.deps == frozenset({"vpc"}) and firewall.deps == frozenset({"vpc"})
    assert vpc.deps == frozenset() and vpc.timeout is None
    assert firewall.properties["allowed"] == [{"IPProtocol": "tcp", "ports": ["443"]}]
    assert plan.step("subnet") is subnet
    with pytest.raises(KeyError):
        plan.step("nope")


def test_positions_of_steps_and_fields(sample):
    plan = load_plan(sample)
    lines = sample.read_text().splitlines()
    subnet = plan.step("subnet")
    assert lines[subnet.pos.line - 1].strip() == "- id: subnet"
    network = subnet.position("properties.network")
    assert lines[network.line - 1][network.col - 1 :].startswith("network: ${vpc.selfLink}")
    ports = plan.step("allow-internal").position("properties.allowed[0].ports.0")
    assert lines[ports.line - 1][ports.col - 1 :].startswith('"443"')
    # A field the file does not spell out points at the nearest one that it does.
    assert subnet.position("properties.logConfig.enable") == subnet.position("properties")
    assert str(network) == f"{sample}:{network.line}:{network.col}"
    assert isinstance(network, Position)


def test_var_overrides_are_typed_like_the_declared_value(plan):
    loaded = plan.load(
        """\
        name: t
        vars: {project: demo-project, global: false, mtu: 1460, prefix: demo}
        defaults: {project: "${vars.project}"}
        steps:
          - id: vpc
            kind: compute.network
            name: ${vars.prefix}-vpc
            properties:
              autoCreateSubnetworks: ${vars.global}
              mtu: ${vars.mtu}
              description: "mtu ${vars.mtu}, global ${vars.global}"
        """,
        vars={"project": "other-project", "global": "true", "mtu": "1500"},
    )
    vpc = loaded.step("vpc")
    assert vpc.scope == {"project": "other-project"}
    assert vpc.name == "demo-vpc"
    assert vpc.properties["autoCreateSubnetworks"] is True
    assert vpc.properties["mtu"] == 1500
    assert vpc.properties["description"] == "mtu 1500, global true"


def test_timeouts_depends_on_and_explicit_scope(plan):
    loaded = plan.load(
        """\
          - id: vpc
            kind: compute.network
            name: vpc
            timeout: 90s
          - id: a
            kind: compute.subnetwork
            name: a
            region: us-central1
            timeout: 10m
            properties: {network: "${vpc.selfLink}", ipCidrRange: 10.0.0.0/24}
          - id: b
            kind: compute.firewall
            name: b
            depends_on: [a, vpc, a]
            timeout: 1h30m
            properties: {network: "${vpc.path}"}
          - id: c
            kind: compute.network
            name: c
            timeout: 45
        """,
        header=True,
    )
    assert [s.timeout for s in loaded.steps] == [90.0, 600.0, 5400.0, 45.0]
    assert loaded.step("a").scope == {"project": "demo-project", "region": "us-central1"}
    b = loaded.step("b")
    assert b.depends_on == ("a", "vpc")
    assert b.deps == frozenset({"a", "vpc"})


def test_secrets_are_references_never_values(plan, monkeypatch):
    monkeypatch.setenv("VPN_SECRET", "s3cr3t-value")
    loaded = plan.load(
        """\
        name: t
        secrets:
          vpn: {env: VPN_SECRET}
          key: {file: keys/tls.key}
          sm: {secret_manager: projects/p/secrets/s/versions/latest}
        steps: []
        """
    )
    assert loaded.secrets == {
        "vpn": SecretRef("vpn", "env", "VPN_SECRET"),
        "key": SecretRef("key", "file", str(plan.tmp_path / "keys" / "tls.key")),
        "sm": SecretRef("sm", "secret_manager", "projects/p/secrets/s/versions/latest"),
    }
    assert "s3cr3t-value" not in repr(loaded)


def test_escape_keeps_a_literal_dollar_brace(plan):
    loaded = plan.load(
        """\
          - id: vpc
            kind: compute.network
            name: vpc
            properties: {description: "costs $$5 $${vars.x} $${HOME}"}
        """,
        header=True,
    )
    # Templates keep the escape; refs.resolve turns it into the literal text.
    assert loaded.step("vpc").properties["description"] == "costs $$5 $${vars.x} $${HOME}"
    assert loaded.step("vpc").deps == frozenset()


def test_var_values_are_literal(plan):
    loaded = plan.load(
        """\
        name: t
        vars: {tpl: "echo $${HOME}", list: [a, b]}
        defaults: {project: demo-project}
        steps:
          - id: vpc
            kind: compute.network
            name: vpc
            properties: {description: "${vars.tpl}"}
          - id: fw
            kind: compute.firewall
            name: fw
            properties: {network: "${vpc.selfLink}", targetTags: "${vars.list}"}
        """
    )
    from orchestrator.plan import resolve

    vpc = loaded.step("vpc")
    # Substituted text is escaped again, so the var's `${HOME}` never reads as a reference.
    assert vpc.properties["description"] == "echo $${HOME}"
    assert resolve(vpc.properties["description"], lambda r: 1 / 0) == "echo ${HOME}"
    assert loaded.step("fw").properties["targetTags"] == ["a", "b"]


def test_yaml_anchors_and_merge_keys(plan):
    loaded = plan.load(
        """\
        name: t
        defaults: {project: demo-project}
        x-templates:
          base: &base
            kind: compute.firewall
            properties: &props {direction: INGRESS, network: "${vpc.selfLink}"}
        steps:
          - id: vpc
            kind: compute.network
            name: vpc
          - <<: *base
            id: fw-a
            name: fw-a
          - <<: *base
            id: fw-b
            name: fw-b
            properties:
              <<: *props
              direction: EGRESS
        """
    )
    assert loaded.step("fw-a").properties == {"direction": "INGRESS", "network": "${vpc.selfLink}"}
    assert loaded.step("fw-b").properties["direction"] == "EGRESS"
    assert loaded.step("fw-b").deps == frozenset({"vpc"})
    # A merged key points at the `<<` that brought it in.
    assert loaded.step("fw-a").position("kind").line == plan.line("<<: *base")


def test_yaml_1_2_scalars(plan):
    loaded = plan.load(
        """\
        name: t
        vars: {a: no, b: on, c: 0777, d: 0x1f, e: ~, f: 1.5, g: "12", h: 2024-01-01, i: !!str 7}
        steps: []
        """
    )
    assert loaded.vars == {
        "a": "no",
        "b": "on",
        "c": 777,
        "d": 31,
        "e": None,
        "f": 1.5,
        "g": "12",
        "h": "2024-01-01",
        "i": "7",
    }


def test_pure_python_parser_gives_the_same_plan(sample, no_libyaml):
    from orchestrator.plan import source

    assert source.parser_name() == "pure-python"
    plan = load_plan(sample)
    assert [s.id for s in plan.steps] == ["vpc", "subnet", "allow-internal"]
    assert plan.step("subnet").position("properties.network").line == 21


def test_load_plan_text(sample):
    plan = load_plan_text(sample.read_text(), sample)
    assert isinstance(plan, Plan) and plan.path == sample


def _big_plan(steps: int) -> str:
    out = [
        "name: big",
        "vars: {project: demo-project, region: europe-west1}",
        "defaults: {project: '${vars.project}', region: '${vars.region}'}",
        "steps:",
        "  - id: vpc",
        "    kind: compute.network",
        "    name: vpc",
        "    properties: {autoCreateSubnetworks: false, routingConfig: {routingMode: GLOBAL}}",
    ]
    for i in range(steps - 1):
        if i % 2:
            out += [
                f"  - id: fw{i}",
                "    kind: compute.firewall",
                f"    name: fw{i}",
                "    timeout: 5m",
                "    properties:",
                "      network: ${vpc.selfLink}",
                f"      sourceRanges: ['${{s{i - 1}.ipCidrRange}}']",
                "      allowed: [{IPProtocol: tcp, ports: ['443', '8443']}]",
            ]
        else:
            out += [
                f"  - id: s{i}",
                "    kind: compute.subnetwork",
                f"    name: s{i}",
                "    properties:",
                "      network: ${vpc.selfLink}",
                f"      ipCidrRange: 10.{i // 256}.{i % 256}.0/24",
                "      privateIpGoogleAccess: true",
            ]
    return "\n".join(out) + "\n"


def test_a_thousand_step_plan_validates(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(_big_plan(1000))
    plan = load_plan(path)
    assert len(plan.steps) == 1000
    assert plan.step("fw997").deps == frozenset({"vpc", "s996"})


def test_import_loads_no_client_library():
    # `provision --help` must stay fast: loading a plan pulls in no Google client library.
    code = (
        "import sys, orchestrator.plan as p; p.load_plan('plans/network-basics.yaml');"
        "print([m for m in sys.modules if m == 'google' or "
        "m.startswith(('google.', 'googleapiclient', 'grpc'))])"
    )
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
