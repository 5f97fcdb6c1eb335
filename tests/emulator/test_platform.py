"""IAM, Resource Manager and Service Usage through google-api-python-client."""

from __future__ import annotations

import json

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

from .conftest import PROJECT, Compute


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


# --- IAM ---------------------------------------------------------------------------------


def test_service_account_lifecycle(google_api) -> None:
    accounts = google_api("iam", "v1").projects().serviceAccounts()
    created = accounts.create(
        name=f"projects/{PROJECT}",
        body={"accountId": "invoker", "serviceAccount": {"displayName": "Invoker"}},
    ).execute()
    email = f"invoker@{PROJECT}.iam.gserviceaccount.com"
    assert created["email"] == email
    assert created["name"] == f"projects/{PROJECT}/serviceAccounts/{email}"
    assert created["displayName"] == "Invoker"
    assert created["uniqueId"].isdigit()

    by_dash = accounts.get(name=f"projects/-/serviceAccounts/{email}").execute()
    by_id = accounts.get(name=f"projects/-/serviceAccounts/{created['uniqueId']}").execute()
    assert by_dash == by_id == created
    listed = accounts.list(name=f"projects/{PROJECT}").execute()
    assert [a["email"] for a in listed["accounts"]] == [email]

    with pytest.raises(HttpError) as caught:
        accounts.create(name=f"projects/{PROJECT}", body={"accountId": "invoker"}).execute()
    assert caught.value.status_code == 409

    assert accounts.delete(name=f"projects/-/serviceAccounts/{email}").execute() == {}
    with pytest.raises(HttpError) as caught:
        accounts.get(name=f"projects/{PROJECT}/serviceAccounts/{email}").execute()
    assert caught.value.status_code == 404
    assert error_of(caught.value)["status"] == "NOT_FOUND"


def test_service_account_id_is_checked(google_api) -> None:
    accounts = google_api("iam", "v1").projects().serviceAccounts()
    with pytest.raises(HttpError) as caught:
        accounts.create(name=f"projects/{PROJECT}", body={"accountId": "No"}).execute()
    assert caught.value.status_code == 400


def test_unimplemented_iam_method_is_501(google_api) -> None:
    roles = google_api("iam", "v1").projects().roles()
    with pytest.raises(HttpError) as caught:
        roles.create(parent=f"projects/{PROJECT}", body={"roleId": "r", "role": {}}).execute()
    assert caught.value.status_code == 501
    assert "iam.projects.roles.create" in error_of(caught.value)["message"]


# --- Resource Manager --------------------------------------------------------------------


def test_every_project_exists_with_a_stable_number(google_api) -> None:
    projects = google_api("cloudresourcemanager", "v3").projects()
    project = projects.get(name=f"projects/{PROJECT}").execute()
    number = project["name"].split("/")[1]
    assert number.isdigit() and len(number) == 12
    assert project["projectId"] == PROJECT and project["state"] == "ACTIVE"
    assert projects.get(name=f"projects/{number}").execute() == project
    assert projects.get(name=f"projects/{PROJECT}").execute()["name"] == project["name"]


def test_project_creation_is_not_emulated(google_api) -> None:
    projects = google_api("cloudresourcemanager", "v3").projects()
    with pytest.raises(HttpError) as caught:
        projects.create(body={"projectId": "new-project"}).execute()
    assert caught.value.status_code == 501


def test_project_iam_policy(google_api) -> None:
    projects = google_api("cloudresourcemanager", "v3").projects()
    policy = projects.getIamPolicy(resource=f"projects/{PROJECT}", body={}).execute()
    policy["bindings"] = [{"role": "roles/viewer", "members": ["user:a@example.com"]}]
    projects.setIamPolicy(resource=f"projects/{PROJECT}", body={"policy": policy}).execute()
    read = projects.getIamPolicy(resource=f"projects/{PROJECT}", body={}).execute()
    assert read["bindings"] == policy["bindings"]


def test_configured_projects_are_the_only_ones() -> None:

    with Emulator(projects=["known-project"]) as emu:
        projects = discovery.build(
            "cloudresourcemanager",
            "v3",
            credentials=AnonymousCredentials(),
            static_discovery=True,
            client_options={"api_endpoint": f"{emu.url}/cloudresourcemanager/"},
        ).projects()
        assert projects.get(name="projects/known-project").execute()["projectId"]
        with pytest.raises(HttpError) as caught:
            projects.get(name="projects/unknown-project").execute()
        assert caught.value.status_code == 403
        compute = Compute(emu.url)
        with pytest.raises(exceptions.Forbidden):
            compute.networks.get(project="unknown-project", network="n")


# --- Service Usage -----------------------------------------------------------------------


def wait(usage, op: dict) -> dict:
    while not op.get("done"):
        op = usage.operations().get(name=op["name"]).execute()
    return op


def test_enable_and_disable_services(google_api) -> None:
    usage = google_api("serviceusage", "v1")
    services = usage.services()
    name = f"projects/{PROJECT}/services/compute.googleapis.com"
    assert services.get(name=name).execute()["state"] == "DISABLED"

    op = services.enable(name=name, body={}).execute()
    assert op["name"].startswith("operations/") and not op["done"]
    done = wait(usage, op)
    assert done["response"]["service"]["state"] == "ENABLED"
    assert done["response"]["@type"].endswith("EnableServiceResponse")
    got = services.get(name=name).execute()
    assert got["state"] == "ENABLED"
    assert got["config"]["title"] == "Compute Engine API"
    assert got["name"].startswith("projects/") and got["name"].split("/")[1].isdigit()

    batch = wait(
        usage,
        services.batchEnable(
            parent=f"projects/{PROJECT}",
            body={"serviceIds": ["run.googleapis.com", "apigee.googleapis.com"]},
        ).execute(),
    )
    assert [s["state"] for s in batch["response"]["services"]] == ["ENABLED", "ENABLED"]
    enabled = services.list(parent=f"projects/{PROJECT}", filter="state:ENABLED").execute()
    assert sorted(s["config"]["name"] for s in enabled["services"]) == [
        "apigee.googleapis.com",
        "compute.googleapis.com",
        "run.googleapis.com",
    ]

    wait(usage, services.disable(name=name, body={}).execute())
    assert services.get(name=name).execute()["state"] == "DISABLED"


def test_unknown_service_is_refused(google_api) -> None:
    services = google_api("serviceusage", "v1").services()
    with pytest.raises(HttpError) as caught:
        services.enable(name=f"projects/{PROJECT}/services/nope.googleapis.com", body={}).execute()
    assert caught.value.status_code == 403


def test_disabled_api_is_refused_when_enforced() -> None:

    with Emulator(enforce_services=True) as emu:
        compute = Compute(emu.url)
        with pytest.raises(exceptions.Forbidden) as caught:
            compute.networks.get(project=PROJECT, network="n")
        assert "Compute Engine API has not been used in project" in str(caught.value)
        assert caught.value.reason == "SERVICE_DISABLED"
        usage = discovery.build(
            "serviceusage",
            "v1",
            credentials=AnonymousCredentials(),
            static_discovery=True,
            client_options={"api_endpoint": f"{emu.url}/serviceusage/"},
        )
        op = (
            usage.services()
            .enable(name=f"projects/{PROJECT}/services/compute.googleapis.com", body={})
            .execute()
        )
        wait(usage, op)
        with pytest.raises(exceptions.NotFound):  # now through to compute itself
            compute.networks.get(project=PROJECT, network="n")
