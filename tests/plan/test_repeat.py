"""for_each: a step repeated over a collection from the vars, with ids keyed by element, checked
with the lines of the step as written, and stable in the ledger as the collection changes."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

import orchestrator
from orchestrator.plan import PlanError, load_plan_text, plan_json_schema
from orchestrator.plan.source import parse
from provision_emulator import Emulator

PLAN = """\
name: repeated
vars:
  project: p-one
  spokes: [a, b, c]
  sizes: {small: 24, large: 20}
defaults: {project: "${vars.project}"}
steps:
  - id: net
    for_each: ${vars.spokes}
    kind: compute.network
    name: net-${each.key}
    properties: {autoCreateSubnetworks: false}
  - id: subnet
    for_each: {product: ["${vars.spokes}", "${vars.sizes}"]}
    kind: compute.subnetwork
    name: sub-${each.key}
    region: europe-west1
    properties:
      network: ${net[${each.value.0}].selfLink}
      ipCidrRange: 10.0.0.0/${each.value.1}
  - id: fw
    for_each: {pairs: "${vars.spokes}"}
    kind: compute.firewall
    name: fw-${each.key}
    properties:
      network: ${net[${each.value.a}].selfLink}
      description: from ${each.value.b}
      priority: ${each.value.a.priority}
      sourceRanges: ["10.0.0.0/8"]
      allowed: [{IPProtocol: tcp}]
  - id: after
    kind: compute.network
    name: after
    properties: {autoCreateSubnetworks: false}
    depends_on: [fw]
"""


def test_each_element_makes_a_step_keyed_by_it() -> None:
    plan = load_plan_text(PLAN.replace("      priority: ${each.value.a.priority}\n", ""),
                          "p.yaml")
    ids = [s.id for s in plan.steps]
    assert ids == ["net[a]", "net[b]", "net[c]",
                   "subnet[a-small]", "subnet[a-large]", "subnet[b-small]", "subnet[b-large]",
                   "subnet[c-small]", "subnet[c-large]",
                   "fw[a-b]", "fw[a-c]", "fw[b-c]", "after"]
    subnet = plan.step("subnet[b-large]")
    assert subnet.name == "sub-b-large"
    assert subnet.properties["ipCidrRange"] == "10.0.0.0/20"
    assert subnet.deps == {"net[b]"}
    fw = plan.step("fw[a-c]")
    assert fw.properties["description"] == "from c" and fw.deps == {"net[a]"}
    # depends_on the repeated step: every step it generated.
    assert plan.step("after").deps == {"fw[a-b]", "fw[a-c]", "fw[b-c]"}
    # A generated step is placed at the lines of the step as written.
    assert fw.pos.line == PLAN.splitlines().index("  - id: fw") + 1


def test_a_whole_value_reference_keeps_its_type() -> None:
    text = PLAN.replace("spokes: [a, b, c]", "spokes: [{name: a, priority: 100}, "
                        "{name: b, priority: 200}]").replace(
        "for_each: {product: [\"${vars.spokes}\", \"${vars.sizes}\"]}",
        "for_each: {product: [[a, b], \"${vars.sizes}\"]}").replace(
        "from ${each.value.b}", "from ${each.value.b.name}").replace(
        "${net[${each.value.a}].selfLink}", "${net[${each.value.a.name}].selfLink}")
    plan = load_plan_text(text, "p.yaml")
    assert [s.id for s in plan.steps if s.id.startswith("net")] == ["net[a]", "net[b]"]
    fw = plan.step("fw[a-b]")
    assert fw.properties["priority"] == 100  # an int, as the var holds it
    assert fw.properties["description"] == "from b"
    with pytest.raises(PlanError, match="is a mapping, which cannot be part of a string"):
        load_plan_text(text.replace("from ${each.value.b.name}", "from ${each.value.b}"),
                       "p.yaml")


@pytest.mark.parametrize(("edit", "said"), [
    (("spokes: [a, b, c]", "spokes: [a, b, a]"),
     "p.yaml:9:15: step 'net' for_each: key 'a' comes twice"),
    (("spokes: [a, b, c]", "spokes: [a, 'b/c']"),
     "p.yaml:9:15: step 'net' for_each: key 'b/c' cannot be part of a step id"),
    (("spokes: [a, b, c]", "spokes: 3"),
     "p.yaml:9:15: step 'net' for_each: for_each takes a list, a map"),
    (("description: from ${each.value.b}", "description: from ${each.value.z}"),
     "step 'fw' properties.description (for fw[a-b]): ${each.value.z}: a mapping has no 'z'"),
    (("    depends_on: [fw]\n", "    depends_on: [fw]\n    description: ${each.key}\n"),
     "step 'after' description: ${each.key} and ${each.value} are defined only in a step "
     "with for_each"),
    (("  - id: after\n", "  - id: after[x]\n"),
     "'after[x]': brackets are for the ids for_each generates"),
])
def test_what_cannot_be_repeated_is_said_with_the_line(edit: tuple[str, str], said: str) -> None:
    text = PLAN.replace("      priority: ${each.value.a.priority}\n", "").replace(*edit)
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, "p.yaml")
    assert said in str(caught.value), str(caught.value)


def test_a_property_error_names_each_generated_step_at_the_written_line() -> None:
    text = PLAN.replace("      priority: ${each.value.a.priority}\n", "      bogus: 1\n")
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, "p.yaml")
    line = PLAN.splitlines().index("      priority: ${each.value.a.priority}") + 1
    assert [str(d) for d in caught.value.diagnostics] == [
        f"p.yaml:{line}:7: step 'fw[{k}]' properties.bogus: unknown field"
        for k in ("a-b", "a-c", "b-c")]


def test_the_editor_schema_takes_for_each() -> None:
    data, _, _ = parse(PLAN, "p.yaml")
    jsonschema.validate(data, plan_json_schema())
    assert "for_each" in plan_json_schema()["$defs"]["StepSpec"]["properties"]


def test_adding_and_removing_an_element_touches_only_its_steps(tmp_path: Path) -> None:
    plan = tmp_path / "repeated.yaml"
    plan.write_text(PLAN.replace("      priority: ${each.value.a.priority}\n", "").replace(
        "sizes: {small: 24, large: 20}", "sizes: {small: 24}"))
    with Emulator() as emu:
        def run(spokes: list[str]) -> dict[str, str]:
            before = len(emu.requests())
            with orchestrator.load(plan, emulator=emu, state_dir=tmp_path / ".provision",
                                   vars={"spokes": spokes}) as dep:
                result = dep.apply()
                assert result.ok, [(f.step, f.message) for f in result.failures]
            made = [r for r in emu.requests()[before:] if r["mutating"]]
            assert all(r["method"].endswith((".insert", ".delete")) for r in made), [
                r["method"] for r in made]
            return {s: a for s, a in result.actions.items() if a != "noop"}

        assert len(run(["a", "b"])) == 6  # 2 networks, 2 subnets, 1 firewall, after
        assert run(["a", "b", "c"]) == {"net[c]": "create", "subnet[c-small]": "create",
                                        "fw[a-c]": "create", "fw[b-c]": "create"}
        assert run(["a", "b", "c"]) == {}
        shrunk = run(["b", "c"])
        assert shrunk == {"net[a]": "delete", "subnet[a-small]": "delete",
                          "fw[a-b]": "delete", "fw[a-c]": "delete"}


def test_positions_and_integer_arithmetic_derive_addresses_that_appending_keeps() -> None:
    text = """\
name: wheel
vars:
  hub: {name: hub, asn: 64512}
  spokes: [{name: a, asn: 64601}, {name: b, asn: 64602}]
steps:
  - id: link
    for_each: {product: [{pairs: {concat: [["${vars.hub}"], "${vars.spokes}"]}}, [0, 1]]}
    kind: compute.network
    name: link-${each.key}
    project: p-one
    properties:
      description: >-
        169.254.${(each.value.0.n * 2 + each.value.1) // 64}.${(each.value.0.n * 2 +
        each.value.1) % 64 * 4 + 1}/30 to ${each.value.0.b.asn}, $${each.key} kept
      mtu: ${1400 + each.value.0.j}
"""
    def links(spokes: str) -> dict[str, tuple[str, int]]:
        plan = load_plan_text(text.replace(
            "spokes: [{name: a, asn: 64601}, {name: b, asn: 64602}]", spokes), "w.yaml")
        return {s.id: (s.properties["description"], s.properties["mtu"]) for s in plan.steps}

    three = links("spokes: [{name: a, asn: 64601}, {name: b, asn: 64602}]")
    assert three["link[hub-a-0]"] == ("169.254.0.1/30 to 64601, $${each.key} kept", 1401)
    assert three["link[a-b-1]"] == ("169.254.0.21/30 to 64602, $${each.key} kept", 1402)
    four = links("spokes: [{name: a, asn: 64601}, {name: b, asn: 64602}, "
                 "{name: c, asn: 64603}]")
    # Appending a member keeps every existing link's /30; the new ones take new blocks.
    assert {k: v for k, v in four.items() if k in three} == three
    assert len({v[0] for v in four.values()}) == len(four) == 12
    with pytest.raises(PlanError, match=r"each.value.0.b is a mapping, not an integer"):
        load_plan_text(text.replace("${1400 + each.value.0.j}", "${1400 + each.value.0.b}"),
                       "w.yaml")
    with pytest.raises(PlanError, match=r"only integers, each.\* and"):
        load_plan_text(text.replace("${1400 + each.value.0.j}", "${1400 / each.value.0.j}"),
                       "w.yaml")
