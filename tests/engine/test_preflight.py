"""The permission preflight, against the emulator's model of IAM: a caller who lacks what a
plan needs is told, per project and step, with the roles that grant it, before anything is read
or changed; the roles it names are enough for the whole apply and destroy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator
from google_facts import permissions
from orchestrator.engine.preflight import MissingPermissions, covering_roles, roles_for
from orchestrator.plan import load_plan
from provision_emulator import Emulator

from .conftest import BASICS

PLANS = Path(__file__).parents[2] / "plans"
APIGEE, BACKEND = "apigee-demo-project", "backend-demo-project"
# A caller who may only build networks in the backend project.
NETWORK_ADMIN = {"caller": "user:dev@example.com",
                 "grants": {f"projects/{BACKEND}": ["roles/compute.networkAdmin"]}}


def _missing(emu: Emulator, tmp_path: Path, plan: Path) -> MissingPermissions:
    with (orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json") as dep,
          pytest.raises(MissingPermissions) as caught):
        dep.plan_changes()
    return caught.value


def test_a_restricted_caller_learns_every_missing_permission_before_any_read(
    tmp_path: Path,
) -> None:
    with Emulator(access=NETWORK_ADMIN) as emu:
        report = _missing(emu, tmp_path, PLANS / "psc-cloud-run.yaml").report
        assert {r["method"] for r in emu.requests()} == {
            "cloudresourcemanager.projects.testIamPermissions"}
    by_step = {(n.step, n.resource): n.permission for n in report.missing}
    # Every step of the plan but those the grant covers (the load balancer's compute pieces
    # in the backend project) is named, with the project it needs its permissions on.
    assert {step for step, _ in by_step} >= {"org", "instance", "proxy", "orders", "neg", "cert",
                                             "apigee-zone", "backend-zone", "psa", "invoker"}
    assert ("subnet", f"projects/{BACKEND}") not in by_step
    assert ("proxy", f"projects/{APIGEE}") in by_step
    proxy = {n.permission for n in report.missing if n.step == "proxy"}
    assert {"apigee.proxies.create", "apigee.deployments.create",
            permissions.ACT_AS} <= proxy
    backend = {n.permission for n in report.missing if n.resource == f"projects/{BACKEND}"}
    assert "compute.subnetworks.create" not in backend
    assert {"run.services.create", "compute.regionNetworkEndpointGroups.create"} <= backend


def test_the_roles_it_names_are_enough_for_apply_and_destroy(tmp_path: Path) -> None:
    """What the report suggests, granted per project, lets the whole plan through the
    emulator's own checks: the kinds declare every permission their calls need."""
    plan = PLANS / "psc-cloud-run.yaml"
    with Emulator(access=NETWORK_ADMIN) as emu:
        report = _missing(emu, tmp_path, plan).report
        grants: dict[str, list[str]] = {
            f"projects/{BACKEND}": ["roles/compute.networkAdmin"]}
        for resource in {n.resource for n in report.missing}:
            wanted = {n.permission for n in report.missing if n.resource == resource}
            grants.setdefault(resource, []).extend(covering_roles(wanted))
        emu.set_access({"caller": "user:dev@example.com", "grants": grants})
        with orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json") as dep:
            applied = dep.apply()
            assert applied.ok, [(f.step, f.message) for f in applied.failures]
            destroyed = dep.destroy()
            assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        assert [r for r in emu.requests() if r["status"] == 403] == []


def test_a_call_the_caller_may_not_make_is_refused_as_google_refuses_it(tmp_path: Path) -> None:
    from google.api_core.client_options import ClientOptions
    from google.api_core.exceptions import Forbidden
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1
    from googleapiclient import discovery
    from googleapiclient.errors import HttpError

    with Emulator(access=NETWORK_ADMIN) as emu:
        options = ClientOptions(api_endpoint=f"{emu.url}/compute")
        firewalls = compute_v1.FirewallsClient(credentials=AnonymousCredentials(),
                                               client_options=options)
        with pytest.raises(Forbidden, match="Required 'compute.firewalls.create' permission"):
            firewalls.insert(project=BACKEND, firewall_resource={"name": "fw", "network": "n"})
        apigee = discovery.build("apigee", "v1", credentials=AnonymousCredentials(),
                                 static_discovery=True,
                                 client_options={"api_endpoint": f"{emu.url}/apigee/"})
        with pytest.raises(HttpError) as caught:
            apigee.organizations().get(name=f"organizations/{APIGEE}").execute()
        error = json.loads(caught.value.content)["error"]
        assert error["status"] == "PERMISSION_DENIED"
        assert error["details"][0]["reason"] == "IAM_PERMISSION_DENIED"
        assert error["details"][0]["metadata"]["permission"] == "apigee.organizations.get"
        crm = discovery.build("cloudresourcemanager", "v3", credentials=AnonymousCredentials(),
                              static_discovery=True, client_options={
                                  "api_endpoint": f"{emu.url}/cloudresourcemanager/"})
        held = crm.projects().testIamPermissions(
            resource=f"projects/{BACKEND}",
            body={"permissions": ["compute.networks.create", "compute.firewalls.create"]},
        ).execute()
        assert held == {"permissions": ["compute.networks.create"]}


def test_destroy_refuses_before_deleting_what_it_may_not_delete(
    tmp_path: Path, emulator: Emulator,
) -> None:
    plan = tmp_path / "basics.yaml"
    plan.write_text(BASICS)
    with orchestrator.load(plan, emulator=emulator, ledger=tmp_path / "l.json") as dep:
        assert dep.apply().ok
        # Network admins may not touch firewall rules (roles/compute.securityAdmin's).
        emulator.set_access({"grants": {"projects/eng-project": ["roles/compute.networkAdmin"]}})
        before = len(emulator.requests())
        with pytest.raises(MissingPermissions, match=r"fw \(delete\): .*compute.firewalls.delete"):
            dep.destroy()
        assert [r for r in emulator.requests()[before:] if r["mutating"]] == []
        assert {r.status for r in dep.ledger().resources.values()} == {"present"}
        assert dep.ledger().runs[-1].command != "destroy"


def test_the_cli_lists_them_and_exits_4_and_can_be_told_not_to_ask(tmp_path: Path) -> None:
    with Emulator(access=NETWORK_ADMIN) as emu:
        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "orchestrator", "plan", str(PLANS / "psc-cloud-run.yaml"),
                 "--emulator", emu.url, "--ledger", str(tmp_path / "l.json"), *args],
                capture_output=True, text=True, timeout=120, env={"COLUMNS": "200",
                                                                  "PATH": "/usr/bin:/bin"})

        denied = run()
        assert denied.returncode == 4, denied.stderr
        assert f"on project {APIGEE}:" in denied.stderr
        assert "proxy (create): " in denied.stderr and "roles/apigee.admin" in denied.stderr
        assert "Traceback" not in denied.stderr
        unchecked = run("--skip-permission-check")
        # Then the first read Google refuses says so, as a failure of the run.
        assert unchecked.returncode == 1, unchecked.stderr
        assert "Permission 'serviceusage.services.get' denied" in unchecked.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in PLANS.glob("*.yaml")))
def test_the_roles_provision_roles_names_are_enough_for_each_reference_plan(
    tmp_path: Path, name: str,
) -> None:
    """Granted exactly what `provision roles` (and the README's table) says, per project and
    on the organization, a caller applies and destroys the plan through the emulator's IAM."""
    plan = PLANS / name
    grants = {("organizations/123456789" if where == "organization or folder" else where): roles
              for where, roles in roles_for(load_plan(plan, {}, ())).items()}
    with Emulator(access={"caller": "user:dev@example.com", "grants": grants}) as emu, \
            orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json") as dep:
        applied = dep.apply()
        assert applied.ok, [(f.step, f.message) for f in applied.failures]
        destroyed = dep.destroy()
        assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        assert [r["method"] for r in emu.requests() if r["status"] == 403] == []


def test_act_as_is_asked_of_the_account_the_proxy_runs_as(tmp_path: Path) -> None:
    """Once the account exists, actAs is checked on it: granted there (and not on its project)
    is enough; granted nowhere, the plan names the account."""
    shutil.copytree(PLANS / "demo-tls", tmp_path / "demo-tls")  # the plan's secret files
    plan = tmp_path / "psc.yaml"
    plan.write_text((PLANS / "psc-cloud-run.yaml").read_text())
    account = f"projects/{APIGEE}/serviceAccounts/apigee-invoker@{APIGEE}.iam.gserviceaccount.com"
    grants = roles_for(load_plan(plan, {}, ()))
    grants[f"projects/{APIGEE}"].remove("roles/iam.serviceAccountUser")
    with Emulator() as emu:
        with orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json") as dep:
            assert dep.apply().ok
        plan.write_text(plan.read_text().replace("basePath: /shop", "basePath: /store"))
        emu.set_access({"grants": grants})
        with orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json") as dep:
            with pytest.raises(MissingPermissions) as caught:
                dep.plan_changes()
            assert [(n.step, n.resource, n.permission) for n in caught.value.report.missing] == [
                ("proxy", account, permissions.ACT_AS)]
            emu.set_access({"grants": {**grants, account: ["roles/iam.serviceAccountUser"]}})
            assert [c.action for c in dep.plan_changes().steps if c.step == "proxy"] == ["update"]


def test_a_project_google_will_not_answer_for_is_said_so(tmp_path: Path) -> None:
    plan = tmp_path / "basics.yaml"
    plan.write_text(BASICS)
    with Emulator(projects=["another-project"]) as emu:
        report = _missing(emu, tmp_path, plan).report
    assert report.unseen == {"projects/eng-project"}
    assert "on project eng-project (it does not exist, or you may not see it):" in (
        report.describe())
    assert {n.step for n in report.missing} == {"vpc", "subnet", "fw"}


def test_a_step_the_plan_finds_made_asks_only_what_reading_it_needs(tmp_path: Path) -> None:
    """An API someone else enabled is adopted, not enabled again: a caller who may read but
    not enable it is not refused for it (the check before the reads waits for the plan)."""
    plan = tmp_path / "basics.yaml"
    plan.write_text(BASICS.replace("steps:\n", (
        "steps:\n  - id: api-compute\n    kind: serviceusage.service\n"
        "    name: compute.googleapis.com\n"), 1))
    with Emulator() as emu:
        from google.auth.credentials import AnonymousCredentials
        from googleapiclient import discovery

        usage = discovery.build("serviceusage", "v1", credentials=AnonymousCredentials(),
                                static_discovery=True,
                                client_options={"api_endpoint": f"{emu.url}/serviceusage/"})
        usage.services().enable(name="projects/eng-project/services/compute.googleapis.com",
                                body={}).execute()
        emu.skip(600)  # its operation done
        emu.set_access({"grants": {"projects/eng-project": [
            "roles/compute.networkAdmin", "roles/compute.securityAdmin"]}})
        with orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json") as dep:
            preview = dep.plan_changes()
            assert {c.step: c.action for c in preview.steps}["api-compute"] == "noop"
            assert dep.apply().ok
        emu.set_access({"grants": {"projects/eng-project": ["roles/compute.networkAdmin"]}})
        plan.write_text(plan.read_text().replace("eng-allow-internal", "eng-allow-all"))
        with (orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json") as dep,
              pytest.raises(MissingPermissions) as caught):
            dep.plan_changes()  # the rename replaces the rule: the security admin's
        assert {(n.step, n.permission) for n in caught.value.report.missing} >= {
            ("fw", "compute.firewalls.create"), ("fw", "compute.firewalls.delete")}


@pytest.mark.parametrize(("deployer", "deploys"), [("user:ci@example.com", True),
                                                   ("user:someone-else@example.com", False)])
def test_the_plan_s_grant_lets_its_deployer_act_as_the_proxy_identity(
    tmp_path: Path, deployer: str, deploys: bool,
) -> None:
    """The plan grants roles/iam.serviceAccountUser on the proxy's identity to `deployer`:
    held through that account's policy alone, it lets that caller deploy a revision running as
    it (the emulator reads the policy as Google does); another caller is refused actAs."""
    shutil.copytree(PLANS / "demo-tls", tmp_path / "demo-tls")
    plan = tmp_path / "psc.yaml"
    plan.write_text((PLANS / "psc-cloud-run.yaml").read_text())
    grants = roles_for(load_plan(plan, {}, ()))
    grants[f"projects/{APIGEE}"].remove("roles/iam.serviceAccountUser")
    with Emulator() as emu:
        with orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json",
                               vars={"deployer": deployer}) as dep:
            assert dep.apply().ok
        plan.write_text(plan.read_text().replace("basePath: /shop", "basePath: /store"))
        emu.set_access({"caller": "user:ci@example.com", "grants": grants})
        with orchestrator.load(plan, emulator=emu, ledger=tmp_path / "l.json",
                               vars={"deployer": deployer}, check_permissions=False) as dep:
            result = dep.apply()
    assert result.ok is deploys, [(f.step, f.message) for f in result.failures]
    if not deploys:
        [failure] = result.failures
        assert failure.step == "proxy" and "iam.serviceaccounts.actAs" in failure.message
