"""iam.service_account and run.service_iam_member end to end: the Apigee proxy's service account
as roles/run.invoker of a Cloud Run service, beside other members and concurrent writers."""

from __future__ import annotations

from google.iam.v1 import iam_policy_pb2

from .conftest import PROJECT, REGION, mutating

SERVICE = f"projects/{PROJECT}/locations/{REGION}/services/hello"
PROXY = f"serviceAccount:apigee-proxy@{PROJECT}.iam.gserviceaccount.com"
AUDIT = f"serviceAccount:audit-bot@{PROJECT}.iam.gserviceaccount.com"

SERVICE_STEP = """
  - id: hello
    kind: run.service
    name: hello
    properties:
      ingress: INGRESS_TRAFFIC_INTERNAL_ONLY
      template:
        containers: [{image: us-docker.pkg.dev/cloudrun/container/hello}]
"""
ACCOUNTS = """
  - id: proxy-sa
    kind: iam.service_account
    name: apigee-proxy
    properties: {displayName: Apigee proxy, description: calls Cloud Run}
  - id: audit-sa
    kind: iam.service_account
    name: audit-bot
    properties: {displayName: Audit}
"""
INVOKER = """
  - id: proxy-invoker
    kind: run.service_iam_member
    name: hello
    depends_on: [hello]
    properties: {role: roles/run.invoker, member: "serviceAccount:${proxy-sa.email}"}
"""
# Two more members of the same service, in the same and in another role: they run in parallel
# with the invoker step, each a read-modify-write of the one policy.
OTHERS = """
  - id: audit-invoker
    kind: run.service_iam_member
    name: hello
    depends_on: [hello]
    properties: {role: roles/run.invoker, member: "serviceAccount:${audit-sa.email}"}
  - id: audit-viewer
    kind: run.service_iam_member
    name: hello
    depends_on: [hello]
    properties: {role: roles/run.viewer, member: "serviceAccount:${audit-sa.email}"}
"""
HEAD = f"""
name: invoker
defaults: {{project: {PROJECT}, region: {REGION}}}
steps:
"""
PLAN = HEAD + SERVICE_STEP + ACCOUNTS + INVOKER + OTHERS


def bindings(run_services) -> dict[str, set[str]]:
    policy = run_services.get_iam_policy(
        request=iam_policy_pb2.GetIamPolicyRequest(resource=SERVICE)
    )
    return {b.role: set(b.members) for b in policy.bindings}


def test_invoker_binding_names_the_proxy_service_account(deploy, run_services, iam):
    dep = deploy(PLAN)
    result = dep.apply()
    assert result.ok, result.failures
    assert bindings(run_services) == {
        "roles/run.invoker": {PROXY, AUDIT},
        "roles/run.viewer": {AUDIT},
    }
    account = iam.projects().serviceAccounts().get(
        name=f"projects/{PROJECT}/serviceAccounts/apigee-proxy@{PROJECT}.iam.gserviceaccount.com"
    ).execute()
    assert account["displayName"] == "Apigee proxy"
    outputs = dep.outputs()
    assert outputs["proxy-sa"]["email"] == f"apigee-proxy@{PROJECT}.iam.gserviceaccount.com"
    assert outputs["proxy-sa"]["uniqueId"] == account["uniqueId"]
    assert outputs["proxy-invoker"]["path"] == f"{SERVICE}/iam/roles/run.invoker/{PROXY}"


def test_concurrent_members_survive_delayed_iam_reads(emulator, deploy, run_services):
    # A set policy reads back as the old one for a while: the next writer's etag is stale,
    # Google answers ABORTED, and the writer must re-read rather than drop a member.
    emulator.set_faults(iam_delay=60)
    result = deploy(PLAN).apply()
    assert result.ok, result.failures
    assert bindings(run_services) == {
        "roles/run.invoker": {PROXY, AUDIT},
        "roles/run.viewer": {AUDIT},
    }
    sets = [r["status"] for r in emulator.requests()
            if r["method"] == "run.projects.locations.services.setIamPolicy"]
    assert 409 in sets and sets.count(200) == 3


def test_reapply_makes_no_mutating_request(emulator, deploy):
    assert deploy(PLAN).apply().ok
    before = len(emulator.requests())
    result = deploy(PLAN).apply()
    assert result.ok and set(result.actions.values()) == {"noop"}
    assert mutating(emulator, before) == []


def test_description_updates_in_place(emulator, deploy, iam):
    assert deploy(PLAN).apply().ok
    before = len(emulator.requests())
    result = deploy(PLAN.replace("calls Cloud Run", "invokes the backends")).apply()
    assert result.ok and result.actions["proxy-sa"] == "update"
    assert mutating(emulator, before) == ["iam.projects.serviceAccounts.patch"]
    account = iam.projects().serviceAccounts().get(
        name=f"projects/{PROJECT}/serviceAccounts/apigee-proxy@{PROJECT}.iam.gserviceaccount.com"
    ).execute()
    # The ownership marker rides in the description: service accounts have no labels.
    assert account["description"].startswith("invokes the backends [provision:")
    assert account["displayName"] == "Apigee proxy"


def test_a_member_leaving_the_plan_takes_only_itself(emulator, deploy, run_services):
    assert deploy(PLAN).apply().ok
    before = len(emulator.requests())
    result = deploy(HEAD + SERVICE_STEP + ACCOUNTS + INVOKER).apply()
    assert result.ok, result.failures
    assert mutating(emulator, before) == ["run.projects.locations.services.setIamPolicy"] * 2
    assert bindings(run_services) == {"roles/run.invoker": {PROXY}}


def test_changed_member_is_a_new_member_and_the_old_one_goes(emulator, deploy, run_services):
    plan = HEAD + SERVICE_STEP + ACCOUNTS + INVOKER
    assert deploy(plan).apply().ok
    result = deploy(plan.replace("${proxy-sa.email}", "${audit-sa.email}")).apply()
    assert result.ok and result.actions["proxy-invoker"] == "replace"  # it moves
    assert bindings(run_services) == {"roles/run.invoker": {AUDIT}}


def test_service_account_that_reads_404_after_create_is_waited_for(emulator, deploy, iam):
    emulator.set_faults(consistency_delay=30)
    result = deploy(HEAD + ACCOUNTS).apply()
    assert result.ok, result.failures
    reads = [r["status"] for r in emulator.requests()
             if r["method"] == "iam.projects.serviceAccounts.get"]
    # The read before create, then reads after it: 404 while settling, then found.
    assert reads.count(404) > 2 and reads[-1] == 200


def test_member_of_a_service_not_yet_made_says_what_to_do(deploy):
    plan = HEAD + ACCOUNTS + INVOKER.replace("    depends_on: [hello]\n", "")
    result = deploy(plan).apply()
    assert [f.step for f in result.failures] == ["proxy-invoker"]
    assert "does not exist: its step must come first" in result.failures[0].message


def test_destroy_removes_members_then_service_and_accounts(emulator, deploy, run_services, iam):
    dep = deploy(PLAN)
    assert dep.apply().ok
    before = len(emulator.requests())
    result = dep.destroy()
    assert result.ok, result.failures
    methods = mutating(emulator, before)
    last_policy_write = max(i for i, m in enumerate(methods) if m.endswith(".setIamPolicy"))
    assert methods.index("run.projects.locations.services.delete") > last_policy_write
    assert iam.projects().serviceAccounts().list(name=f"projects/{PROJECT}").execute() == {}
    assert list(run_services.list_services(parent=SERVICE.rsplit("/", 2)[0])) == []
    assert dep.ledger().resources == {}
