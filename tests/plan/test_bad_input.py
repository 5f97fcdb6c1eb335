"""One test per class of bad input: each names the right line, column and field."""

from __future__ import annotations

import pytest

from orchestrator.plan import Diagnostic, PlanError, load_plan

VPC = """\
  - id: vpc
    kind: compute.network
    name: vpc
"""


def test_yaml_syntax_error(plan):
    [d] = plan.errors("name: t\nsteps:\n  - id: a\n    kind: [compute.network\n")
    assert d.message.startswith("YAML syntax:")
    assert d.line == 5 and d.field == ""


def test_tab_indentation_is_a_syntax_error(plan):
    [d] = plan.errors("name: t\nsteps:\n\t- id: a\n")
    assert (d.line, d.col) == (3, 1)


def test_duplicate_keys_all_reported(plan):
    diags = plan.errors(
        """\
        name: t
        steps:
          - id: vpc
            kind: compute.network
            name: vpc
            name: vpc2
        name: u
        """
    )
    step_dup = plan.one(diags, "steps[0].name")
    assert step_dup.line == plan.line("name: vpc2") and step_dup.col == 5
    assert "first at line 5" in step_dup.message
    top_dup = plan.one(diags, "name")
    assert top_dup.line == plan.line("name: u") and "first at line 1" in top_dup.message


def test_unknown_top_level_key(plan):
    diags = plan.errors("name: t\nstep: []\nsteps: []\n")
    d = plan.one(diags, "step")
    assert (d.line, d.col) == (2, 1)
    assert d.message == "unknown field (did you mean steps?)"


def test_unknown_step_key(plan):
    diags = plan.errors(VPC + "    dependson: []\n", header=True)
    d = plan.one(diags, "step 'vpc' dependson")
    assert d.line == plan.line("dependson") and d.col == 5
    assert "did you mean depends_on?" in d.message


@pytest.mark.parametrize(
    ("text", "field", "snippet", "expected"),
    [
        ("name: t\nvars: [a, b]\nsteps: []\n", "vars", "vars:", "expected a mapping, got a list"),
        ("name: t\nsteps: {a: 1}\n", "steps", "steps:", "expected a list, got a mapping"),
        ("name: t\ndefaults: europe\nsteps: []\n", "defaults", "defaults", "expected a mapping"),
        (
            "name: t\nendpoints: {compute: 5}\nsteps: []\n",
            "endpoints.compute",
            "endpoints",
            "expected a string, got 5",
        ),
        ("name: 7\nsteps: []\n", "name", "name", "expected a string, got 7"),
        ("name: t\nsecrets: {vpn: x}\nsteps: []\n", "secrets.vpn", "secrets", "expected a mapping"),
    ],
)
def test_wrong_type_of_section(plan, text, field, snippet, expected):
    d = plan.one(plan.errors(text), field)
    assert d.line == plan.line(snippet) and expected in d.message


def test_missing_steps(plan):
    d = plan.one(plan.errors("name: t\n"), "steps")
    assert d.message == "missing (required)" and d.line == 1


def test_top_level_must_be_a_mapping(plan):
    [d] = plan.errors("- a\n- b\n")
    assert "must be a mapping" in d.message and d.line == 1


def test_missing_step_id(plan):
    diags = plan.errors("  - kind: compute.network\n    name: vpc\n", header=True)
    d = plan.one(diags, "steps[0].id")
    assert d.line == plan.line("- kind:") and d.message == "missing (required)"


def test_duplicate_step_id(plan):
    diags = plan.errors(VPC + VPC.replace("name: vpc", "name: vpc2"), header=True)
    d = plan.one(diags, "step 'vpc' id")
    assert d.line == plan.line("- id: vpc", nth=1) and d.col == 9
    assert d.message == f"duplicate step id (first at line {plan.line('- id: vpc')})"


@pytest.mark.parametrize("bad_id", ["9lives", "has space", "dot.ted", "ü-umlaut", "x" * 64])
def test_invalid_step_id(plan, bad_id):
    diags = plan.errors(
        f"  - id: '{bad_id}'\n    kind: compute.network\n    name: a\n", header=True
    )
    d = plan.one(diags, "steps[0].id")
    assert d.line == plan.line("- id:") and "must start with a letter" in d.message


def test_reserved_step_id(plan):
    diags = plan.errors(VPC.replace("id: vpc", "id: vars"), header=True)
    assert "reserved" in plan.one(diags, "step 'vars' id").message


def test_unknown_kind_suggests_close_names(plan):
    diags = plan.errors(VPC.replace("compute.network", "compute.netwrok"), header=True)
    d = plan.one(diags, "step 'vpc' kind")
    assert d.line == plan.line("kind:") and d.col == 11
    assert d.message.startswith("unknown kind 'compute.netwrok' (did you mean compute.network")


def test_missing_name(plan):
    diags = plan.errors("  - id: vpc\n    kind: compute.network\n", header=True)
    d = plan.one(diags, "step 'vpc' name")
    assert d.line == plan.line("- id: vpc") and d.message == "missing (required)"


@pytest.mark.parametrize("name", ["Demo-VPC", "demo_vpc", "1vpc", "vpc-", "a" * 64, "vpc;rm -rf"])
def test_name_google_would_reject(plan, name):
    diags = plan.errors(VPC.replace("name: vpc", f"name: '{name}'"), header=True)
    d = plan.one(diags, "step 'vpc' name")
    assert d.line == plan.line("name: '") and "Google would reject" in d.message


def test_name_holding_a_reference_is_not_checked_until_run_time(plan):
    loaded = plan.load(
        VPC + "  - id: fw\n    kind: compute.firewall\n    name: ${vpc.name}-FW\n", header=True
    )
    assert loaded.step("fw").deps == frozenset({"vpc"})


def test_missing_scope_field(plan):
    diags = plan.errors(
        """\
        name: t
        defaults: {project: demo-project}
        steps:
          - id: subnet
            kind: compute.subnetwork
            name: subnet
        """
    )
    d = plan.one(diags, "step 'subnet'")
    assert d.line == plan.line("- id: subnet")
    assert d.message == (
        "no region: compute.subnetwork needs one; set it on the step or in defaults"
    )


def test_missing_project_without_defaults(plan):
    diags = plan.errors("name: t\nsteps:\n" + VPC)
    assert "no project" in plan.one(diags, "step 'vpc'").message


def test_scope_field_the_kind_does_not_take(plan):
    diags = plan.errors(VPC + "    zone: europe-west1-b\n", header=True)
    d = plan.one(diags, "step 'vpc' zone")
    assert d.line == plan.line("zone:") and "takes no zone" in d.message


@pytest.mark.parametrize("value", ["Demo Project", "proj/../x", "UPPER"])
def test_invalid_scope_value(plan, value):
    diags = plan.errors(VPC + f"    project: '{value}'\n", header=True)
    d = plan.one(diags, "step 'vpc' project")
    assert d.line == plan.line("project: '") and "not a valid project" in d.message


def test_invalid_default_scope_value(plan):
    diags = plan.errors("name: t\ndefaults: {region: 'europe west'}\nsteps: []\n")
    assert plan.one(diags, "defaults.region").line == 2


def test_unknown_property_suggests_the_field(plan):
    diags = plan.errors(
        VPC
        + """\
  - id: subnet
    kind: compute.subnetwork
    name: subnet
    properties:
      network: ${vpc.selfLink}
      ipCidrRnage: 10.0.0.0/24
""",
        header=True,
    )
    d = plan.one(diags, "step 'subnet' properties.ipCidrRnage")
    assert (d.line, d.col) == (plan.line("ipCidrRnage"), 7)
    assert d.message == "unknown field (did you mean ipCidrRange?)"
    assert str(d) == (
        f"{plan.path}:{d.line}:7: step 'subnet' properties.ipCidrRnage: "
        "unknown field (did you mean ipCidrRange?)"
    )


def test_unknown_nested_property(plan):
    diags = plan.errors(
        VPC + "    properties: {routingConfig: {routingMod: GLOBAL}}\n", header=True
    )
    d = plan.one(diags, "step 'vpc' properties.routingConfig.routingMod")
    assert "did you mean routingMode?" in d.message and d.line == plan.line("routingMod")


@pytest.mark.parametrize(
    ("props", "field", "message"),
    [
        ("{mtu: fast}", "properties.mtu", "expected an integer, got 'fast'"),
        (
            "{autoCreateSubnetworks: 'no'}",
            "properties.autoCreateSubnetworks",
            "expected true or false, got 'no'",
        ),
        (
            "{routingConfig: {routingMode: WORLD}}",
            "properties.routingConfig.routingMode",
            "invalid value 'WORLD'; one of: GLOBAL, REGIONAL",
        ),
        ("{routingConfig: GLOBAL}", "properties.routingConfig", "expected an object"),
    ],
)
def test_ill_typed_property(plan, props, field, message):
    diags = plan.errors(VPC + f"    properties: {props}\n", header=True)
    d = plan.one(diags, f"step 'vpc' {field}")
    assert d.line == plan.line("properties:") and message in d.message


def test_ill_typed_list_item_points_at_the_item(plan):
    diags = plan.errors(
        VPC
        + """\
  - id: fw
    kind: compute.firewall
    name: fw
    properties:
      network: ${vpc.selfLink}
      allowed:
        - IPProtocol: tcp
          ports: ["80", 443]
""",
        header=True,
    )
    d = plan.one(diags, "step 'fw' properties.allowed[0].ports[1]")
    assert (d.line, d.col) == (plan.line("ports:"), 25)
    assert d.message == "expected a string, got a number"


def test_output_only_property(plan):
    diags = plan.errors(VPC + "    properties:\n      selfLink: x\n", header=True)
    d = plan.one(diags, "step 'vpc' properties.selfLink")
    assert d.line == plan.line("selfLink: x") and "output only" in d.message


def test_type_of_a_referenced_value_is_left_for_run_time(plan):
    loaded = plan.load(
        VPC
        + """\
  - id: fw
    kind: compute.firewall
    name: fw
    properties:
      network: ${vpc.selfLink}
      priority: ${vpc.mtu}
      sourceRanges: ${vpc.subnetworks}
      disabled: ${vpc.autoCreateSubnetworks}
""",
        header=True,
    )
    assert loaded.step("fw").properties["priority"] == "${vpc.mtu}"


def test_name_inside_properties(plan):
    diags = plan.errors(VPC + "    properties: {name: other}\n", header=True)
    d = plan.one(diags, "step 'vpc' properties.name")
    assert d.line == plan.line("properties:") and "top level" in d.message


def test_undefined_var(plan):
    diags = plan.errors(
        "name: t\nvars: {project: p1}\ndefaults: {project: '${vars.projet}'}\nsteps: []\n"
    )
    d = plan.one(diags, "defaults.project")
    assert d.line == 3 and d.message == "no var 'projet' in vars (did you mean project?)"


def test_undefined_var_in_a_step(plan):
    diags = plan.errors(VPC + "    properties: {description: 'v ${vars.nope}'}\n", header=True)
    d = plan.one(diags, "step 'vpc' properties.description")
    assert d.line == plan.line("description") and "no var 'nope'" in d.message


def test_override_of_an_undeclared_var(plan):
    diags = plan.errors("name: t\nvars: {region: r}\nsteps: []\n", vars={"regoin": "x"})
    d = plan.one(diags, "regoin")
    assert (d.file, d.line) == ("--var", 0)
    assert str(d) == "--var regoin: the plan declares no var 'regoin' (did you mean region?)"


@pytest.mark.parametrize(
    ("declared", "given", "message"),
    [
        ("true", "yes", "expected true or false, got 'yes'"),
        ("5", "five", "expected an integer, got 'five'"),
        ("1.5", "nan", "expected a number, got 'nan'"),
        ("[a]", "b", "--var replaces only strings, numbers and booleans"),
    ],
)
def test_override_of_the_wrong_type(plan, declared, given, message):
    diags = plan.errors(f"name: t\nvars: {{x: {declared}}}\nsteps: []\n", vars={"x": given})
    assert message in plan.one(diags, "x").message


def test_var_value_holding_a_reference(plan):
    diags = plan.errors("name: t\nvars: {a: '${vpc.selfLink}'}\nsteps: []\n")
    assert "cannot refer to anything" in plan.one(diags, "vars.a").message


def test_undefined_secret(plan):
    diags = plan.errors(
        "name: t\nsecrets: {vpn: {env: VPN}}\ndefaults: {project: p-1234}\nsteps:\n"
        + VPC
        + "    properties: {description: '${secrets.vnp}'}\n"
    )
    d = plan.one(diags, "step 'vpc' properties.description")
    assert d.line == plan.line("description") and d.message == (
        "no secret 'vnp' in secrets (did you mean vpn?)"
    )


def test_secret_outside_the_kinds_secret_fields(plan):
    diags = plan.errors(
        "name: t\nsecrets: {vpn: {env: VPN}}\ndefaults: {project: p-1234}\nsteps:\n"
        + VPC
        + "    properties: {description: '${secrets.vpn}'}\n"
    )
    d = plan.one(diags, "step 'vpc' properties.description")
    assert d.line == plan.line("description")
    assert "compute.network has no secret fields" in d.message and "ledger" in d.message


def test_secret_in_a_name(plan):
    diags = plan.errors(
        "name: t\nsecrets: {vpn: {env: VPN}}\ndefaults: {project: p-1234}\nsteps:\n"
        + VPC.replace("name: vpc", "name: ${secrets.vpn}")
    )
    assert "cannot go here" in plan.one(diags, "step 'vpc' name").message


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ("{env: A, file: b}", "secrets.s", "exactly one of env, file or secret_manager"),
        ("{}", "secrets.s", "exactly one"),
        ("{env: 'A-B'}", "secrets.s.env", "not an environment variable name"),
        ("{secret_manager: projects/p/secrets/s}", "secrets.s.secret_manager", "version name"),
        ("{vault: x}", "secrets.s.vault", "unknown field"),
    ],
)
def test_bad_secret_source(plan, spec, field, message):
    diags = plan.errors(f"name: t\nsecrets:\n  s: {spec}\nsteps: []\n")
    d = plan.one(diags, field)
    assert d.line == 3 and message in d.message


def test_reference_to_an_unknown_step(plan):
    diags = plan.errors(
        VPC + "  - id: fw\n    kind: compute.firewall\n    name: fw\n"
        "    properties: {network: '${vcp.selfLink}'}\n",
        header=True,
    )
    d = plan.one(diags, "step 'fw' properties.network")
    assert d.line == plan.line("network:")
    assert d.message == "refers to step 'vcp', which does not exist (did you mean vpc?)"


def test_forward_reference_names_the_line_of_its_target(plan):
    diags = plan.errors(
        "  - id: fw\n    kind: compute.firewall\n    name: fw\n"
        "    properties: {network: '${vpc.selfLink}'}\n" + VPC,
        header=True,
    )
    d = plan.one(diags, "step 'fw' properties.network")
    assert d.line == plan.line("network:")
    assert d.message == (
        f"refers to step 'vpc', which comes later (line {plan.line('- id: vpc')}); a step may "
        "reference only steps above it"
    )


def test_self_reference(plan):
    diags = plan.errors(VPC + "    properties: {description: '${vpc.name}'}\n", header=True)
    assert plan.one(diags, "step 'vpc' properties.description").message == "refers to its own step"


def test_forward_depends_on(plan):
    diags = plan.errors(
        "  - id: fw\n    kind: compute.firewall\n    name: fw\n    depends_on: [vpc]\n" + VPC,
        header=True,
    )
    d = plan.one(diags, "step 'fw' depends_on[0]")
    assert (d.line, d.col) == (plan.line("depends_on"), 18)
    assert f"comes later (line {plan.line('- id: vpc')})" in d.message


def test_depends_on_an_unknown_step(plan):
    diags = plan.errors(VPC + "    depends_on: [ghost]\n", header=True)
    assert "'ghost', which does not exist" in plan.one(diags, "step 'vpc' depends_on[0]").message


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("${vpc.selfLnk}", "compute.network has no field 'selfLnk' (did you mean selfLink?)"),
        ("${vpc.routingConfig.mode}", "routingConfig has no field 'mode'"),
        ("${vpc.peerings.name}", "peerings is a list: index it with a number"),
        ("${vpc.name.first}", "name is a string and has no field 'first'"),
    ],
)
def test_output_path_the_target_kind_does_not_have(plan, ref, message):
    diags = plan.errors(
        VPC + f"  - id: fw\n    kind: compute.firewall\n    name: fw\n"
        f"    properties: {{network: '{ref}'}}\n",
        header=True,
    )
    d = plan.one(diags, "step 'fw' properties.network")
    assert d.line == plan.line("network:") and d.message.startswith(f"{ref}: {message}")


def test_output_paths_that_exist(plan):
    plan.load(
        VPC
        + """\
  - id: fw
    kind: compute.firewall
    name: fw
    properties:
      network: ${vpc.path}
      description: ${vpc.peerings.0.name} ${vpc.routingConfig.routingMode} ${vpc.id}
""",
        header=True,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${vpc}", "names no output of step 'vpc'"),
        ("${vpc.selfLink", "unclosed reference"),
        ("${ vpc.selfLink }", "malformed reference"),
        ("${vars.a.b}", "name one var"),
        ("${}", "malformed reference"),
    ],
)
def test_malformed_reference(plan, text, message):
    diags = plan.errors(VPC + f"    properties: {{description: '{text}'}}\n", header=True)
    d = plan.one(diags, "step 'vpc' properties.description")
    assert d.line == plan.line("description") and message in d.message


def test_runtime_reference_in_a_section_resolved_before_any_step(plan):
    diags = plan.errors(
        "name: t\ndefaults: {project: '${vpc.project}'}\nendpoints: {compute: 'https://${x.y}'}\n"
        "steps: []\n"
    )
    assert "only vars can be used here" in plan.one(diags, "defaults.project").message
    assert plan.one(diags, "endpoints.compute").line == 3


def test_unknown_endpoint_api(plan):
    diags = plan.errors("name: t\nendpoints:\n  compte: https://c.example\nsteps: []\n")
    d = plan.one(diags, "endpoints.compte")
    assert (d.line, d.col) == (3, 3) and "unknown API 'compte' (did you mean compute?)" in d.message


@pytest.mark.parametrize(
    "url", ["ftp://x", "compute.example", "https://", "http://h:99999", "javascript:alert(1)"]
)
def test_endpoint_that_is_not_an_http_url(plan, url):
    diags = plan.errors(f"name: t\nendpoints:\n  compute: '{url}'\nsteps: []\n")
    d = plan.one(diags, "endpoints.compute")
    assert (d.line, d.col) == (3, 12) and "not an http(s) URL" in d.message


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        ("10 minutes", "write a duration"),
        ("0", "more than 0 seconds"),
        ("-5", "more than 0 seconds"),
        ("true", "write a duration"),
        ("1y", "write a duration"),
        ("8d", "write a duration"),
        ("200h", "at most 7 days"),
        ("1" + "0" * 400, "at most 7 days"),
    ],
)
def test_bad_timeout(plan, timeout, message):
    diags = plan.errors(VPC + f"    timeout: {timeout}\n", header=True)
    d = plan.one(diags, "step 'vpc' timeout")
    assert d.line == plan.line("timeout:") and message in d.message


def test_duplicate_resource(plan):
    diags = plan.errors(VPC + VPC.replace("id: vpc", "id: vpc2"), header=True)
    d = plan.one(diags, "step 'vpc2' name")
    assert d.line == plan.line("name: vpc", nth=1)
    assert (
        d.message
        == f"step 'vpc' (line {plan.line('- id: vpc')}) already declares this compute.network"
    )


def test_invalid_plan_name(plan):
    diags = plan.errors("name: ../../etc/passwd\nsteps: []\n")
    assert "names the ledger file" in plan.one(diags, "name").message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            "expands to more than",
        ),
        ("a: &a [*a]\n", "refers to itself"),
        ("a: *nope\n", "undefined alias"),
        ("a: " + "[" * 200 + "]" * 200 + "\n", "nests deeper than"),
        ("a: 1\n---\nb: 2\n", "single YAML document"),
        ("", "the plan is empty"),
        ("# only a comment\n", "the plan is empty"),
    ],
)
def test_yaml_documents_the_plan_refuses(plan, text, message):
    [d] = plan.errors(text)
    assert message in d.message and d.line >= 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!python/object:os.system x", "unsupported YAML tag"),
        ("!!binary aGk=", "unsupported YAML tag"),
        (".inf", "not a finite number"),
        ("1e999", "not a finite number"),
        ("!!int abc", "not a valid !!int"),
        ("1" * 5000, "number too large"),
    ],
)
def test_scalars_the_plan_refuses(plan, value, message):
    diags = plan.errors(f"name: t\nvars:\n  x: {value}\nsteps: []\n")
    d = plan.one(diags, "vars.x")
    assert (d.line, d.col) == (3, 6) and message in d.message


def test_keys_must_be_strings(plan):
    diags = plan.errors("name: t\nvars:\n  1: a\n  [x]: b\nsteps: []\n")
    assert [d.line for d in diags] == [3, 4]
    assert all(d.field == "vars" for d in diags)


def test_file_that_cannot_be_read(tmp_path):
    with pytest.raises(PlanError) as info:
        load_plan(tmp_path / "missing.yaml")
    [d] = info.value.diagnostics
    assert d.file == str(tmp_path / "missing.yaml") and "cannot read the plan" in d.message
    with pytest.raises(PlanError):
        load_plan(tmp_path)  # a directory


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"name: t\nsteps: []\n# \xff\xfe\n")
    with pytest.raises(PlanError) as info:
        load_plan(path)
    [d] = info.value.diagnostics
    assert (d.line, d.col) == (3, 3) and "UTF-8" in d.message


def test_every_problem_is_reported_at_once_in_file_order(plan):
    diags = plan.errors(
        """\
        name: t
        vars: {project: p-1234}
        defaults: {project: "${vars.project}", regin: x}
        steps:
          - id: vpc
            kind: compute.netwrk
            name: vpc
          - id: subnet
            kind: compute.subnetwork
            name: Bad_Name
            region: europe-west1
            timeout: soon
            properties:
              ipCidrRnage: 10.0.0.0/24
              network: ${ghost.selfLink}
        """,
        vars={"nope": "x"},
    )
    fields = [d.field for d in diags]
    assert fields == [
        "nope",
        "defaults.regin",
        "step 'vpc' kind",
        "step 'subnet' name",
        "step 'subnet' timeout",
        "step 'subnet' properties.ipCidrRnage",
        "step 'subnet' properties.network",
    ]
    assert all(isinstance(d, Diagnostic) for d in diags)


def test_an_unknown_setting_is_refused_with_a_suggestion(plan):
    diags = plan.errors("name: t\nsettings:\n  ledgr: x.json\nsteps: []\n")
    d = plan.one(diags, "settings.ledgr")
    assert "unknown field" in d.message and "did you mean ledger" in d.message


def test_names_that_would_change_the_request_path_are_refused(plan):
    for name in ("..", ".", "a%2Fb"):
        text = ("name: t\nsteps:\n  - {id: p, kind: apigee.api_proxy, organization: org, "
                f"name: '{name}', properties: {{}}}}\n")
        d = plan.one(plan.errors(text), "step 'p' name")
        assert "would change the request path" in d.message


def test_a_field_inside_a_string_output_is_refused(plan):
    text = ("name: t\ndefaults: {project: p}\nsteps:\n"
            "  - {id: vpc, kind: compute.network, name: v}\n"
            "  - {id: fw, kind: compute.firewall, name: f, properties: "
            "{network: '${vpc.selfLink.x}'}}\n")
    d = plan.one(plan.errors(text), "step 'fw' properties.network")
    assert "selfLink is a string and has no field 'x'" in d.message


def test_a_plan_error_crosses_a_process_boundary_whole() -> None:
    """The edit corpus runs plans in worker processes: the error comes back with its
    diagnostics, not as a crash of the pool."""
    import pickle

    from orchestrator.plan import PlanError, load_plan_text

    try:
        load_plan_text("name: x\nsteps: [{id: a, kind: compute.nope}]", "x.yaml")
    except PlanError as exc:
        again = pickle.loads(pickle.dumps(exc))
        assert str(again) == str(exc) and again.diagnostics == exc.diagnostics
    else:
        raise AssertionError("the plan was accepted")
