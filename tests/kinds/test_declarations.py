"""What the plan check says about these kinds' steps before any API call: the properties a
resource's path is made of are required, and two steps on one member or record collide."""

from __future__ import annotations

import pytest

import orchestrator
from orchestrator.plan import PlanError

from .conftest import PROJECT, REGION

HEAD = f"""name: declarations
defaults: {{project: {PROJECT}, region: {REGION}}}
steps:
"""
RECORD = """  - id: record
    kind: dns.record_set
    name: api.example.com.
    managed_zone: ilb-example
    properties: {type: A, ttl: 300, rrdatas: [10.0.0.2]}
"""
MEMBER = """  - id: {id}
    kind: run.service_iam_member
    name: hello
    properties: {{role: roles/run.invoker, member: "serviceAccount:p@x.iam.gserviceaccount.com"}}
"""


def load_errors(tmp_path, text: str) -> list[str]:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(PlanError) as caught:
        orchestrator.load(path, emulator="http://127.0.0.1:9", state_dir=tmp_path)
    return [str(d) for d in caught.value.diagnostics]


def test_a_record_without_its_type_is_refused_at_its_line(tmp_path):
    [error] = load_errors(tmp_path, HEAD + RECORD.replace("type: A, ", ""))
    assert "plan.yaml:8:" in error and "step 'record' properties: missing type" in error


def test_two_steps_for_one_member_collide(tmp_path):
    [error] = load_errors(tmp_path, HEAD + MEMBER.format(id="a") + MEMBER.format(id="b"))
    assert "step 'b' name: step 'a' (line 4) already declares this run.service_iam_member" in error


def test_members_differing_only_by_role_are_two_resources(tmp_path):
    other_role = MEMBER.format(id="b").replace("run.invoker", "run.viewer")
    path = tmp_path / "plan.yaml"
    path.write_text(HEAD + MEMBER.format(id="a") + other_role)
    plan = orchestrator.load(path, emulator="http://127.0.0.1:9", state_dir=tmp_path).plan
    assert [s.id for s in plan.steps] == ["a", "b"]
