"""run.service end to end: created, read back, fed to a later step, updated in place, replaced
when renamed, destroyed."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from .conftest import PROJECT, REGION, mutating

PARENT = f"projects/{PROJECT}/locations/{REGION}"

PLAN = f"""
name: run-kinds
vars:
  audience: https://api.example.com/hello
  name: hello
defaults: {{project: {PROJECT}, region: {REGION}}}
steps:
  - id: hello
    kind: run.service
    name: ${{vars.name}}
    properties:
      ingress: INGRESS_TRAFFIC_INTERNAL_ONLY
      customAudiences: ["${{vars.audience}}"]
      invokerIamDisabled: false
      template:
        containers: [{{image: us-docker.pkg.dev/cloudrun/container/hello}}]
  - id: caller
    kind: run.service
    name: caller
    properties:
      template:
        containers:
          - image: us-docker.pkg.dev/cloudrun/container/hello
            env: [{{name: UPSTREAM, value: "${{hello.uri}}"}}]
"""


def test_internal_service_with_audiences_whose_uri_feeds_a_later_step(deploy, run_services):
    dep = deploy(PLAN)
    result = dep.apply()
    assert result.ok, result.failures
    assert result.actions == {"hello": "create", "caller": "create"}
    hello = run_services.get_service(name=f"{PARENT}/services/hello")
    assert hello.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    assert list(hello.custom_audiences) == ["https://api.example.com/hello"]
    assert hello.uri.startswith("https://hello-") and hello.uri.endswith(".a.run.app")
    caller = run_services.get_service(name=f"{PARENT}/services/caller")
    assert caller.template.containers[0].env[0].value == hello.uri
    outputs = dep.outputs()["hello"]
    assert outputs["uri"] == hello.uri and outputs["urls"] == list(hello.urls)
    assert outputs["path"] == f"{PARENT}/services/hello"


def test_operations_are_awaited_with_the_run_api_wait(emulator, deploy):
    assert deploy(PLAN).apply().ok
    counts = emulator.request_counts()
    assert counts["run.projects.locations.services.create"] == 2
    assert counts["run.projects.locations.operations.wait"] >= 2


def test_reapply_makes_no_mutating_request(emulator, deploy):
    assert deploy(PLAN).apply().ok
    before = len(emulator.requests())
    result = deploy(PLAN).apply()
    assert result.ok and set(result.actions.values()) == {"noop"}
    assert mutating(emulator, before) == []


def test_changed_audience_is_updated_in_place_keeping_the_rest(emulator, deploy, run_services):
    assert deploy(PLAN).apply().ok
    dep = deploy(PLAN, vars={"audience": "https://api.example.com/v2"})
    change = next(s for s in dep.plan_changes().steps if s.step == "hello")
    assert change.action == "update" and [c.field for c in change.changes] == ["customAudiences"]
    before = len(emulator.requests())
    result = dep.apply()
    assert result.ok and result.actions == {"hello": "update", "caller": "noop"}
    assert mutating(emulator, before) == ["run.projects.locations.services.patch"]
    hello = run_services.get_service(name=f"{PARENT}/services/hello")
    assert list(hello.custom_audiences) == ["https://api.example.com/v2"]
    assert hello.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_ONLY
    assert hello.generation == 2
    assert hello.traffic[0].percent == 100  # set by Google at create, not by the plan


def test_renamed_service_is_replaced_and_its_dependents_follow(emulator, deploy, run_services):
    assert deploy(PLAN).apply().ok
    before = len(emulator.requests())
    result = deploy(PLAN, vars={"name": "hello-v2"}).apply()
    assert result.ok, result.failures
    assert result.actions == {"hello": "replace", "caller": "update"}  # hello moves
    assert mutating(emulator, before) == [
        "run.projects.locations.services.delete",
        "run.projects.locations.services.create",
        "run.projects.locations.services.patch",
    ]
    names = sorted(s.name.rsplit("/", 1)[-1] for s in run_services.list_services(parent=PARENT))
    assert names == ["caller", "hello-v2"]
    new_uri = run_services.get_service(name=f"{PARENT}/services/hello-v2").uri
    caller = run_services.get_service(name=f"{PARENT}/services/caller")
    assert caller.template.containers[0].env[0].value == new_uri


def test_destroy_deletes_dependents_first_and_leaves_nothing(emulator, deploy, run_services):
    dep = deploy(PLAN)
    assert dep.apply().ok
    before = len(emulator.requests())
    result = dep.destroy()
    assert result.ok and result.actions == {"hello": "delete", "caller": "delete"}
    deletes = [r["path"] for r in emulator.requests()[before:] if r["method"].endswith(".delete")]
    assert deletes[0].endswith("/services/caller") and deletes[1].endswith("/services/hello")
    assert list(run_services.list_services(parent=PARENT)) == []
    assert dep.ledger().resources == {}
    with pytest.raises(exceptions.NotFound):
        run_services.get_service(name=f"{PARENT}/services/hello")
