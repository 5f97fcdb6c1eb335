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
