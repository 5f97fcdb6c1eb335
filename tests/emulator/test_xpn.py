"""Shared VPC through google-cloud-compute: the host project, a service project attached to it,
and a shared subnet's IAM policy granting the service project the network user role."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from .conftest import PROJECT, REGION, Compute

HOST, SERVICE = PROJECT, "proj-service"


def attach(compute: Compute, service: str = SERVICE) -> None:
    request = compute_v1.ProjectsEnableXpnResourceRequest(
        xpn_resource=compute_v1.XpnResourceId(id=service, type_="PROJECT")
    )
    op = compute.projects.enable_xpn_resource(
        project=HOST, projects_enable_xpn_resource_request_resource=request
    )
    compute.wait(op, HOST)


def detach(compute: Compute, service: str = SERVICE) -> None:
    request = compute_v1.ProjectsDisableXpnResourceRequest(
        xpn_resource=compute_v1.XpnResourceId(id=service, type_="PROJECT")
    )
    op = compute.projects.disable_xpn_resource(
        project=HOST, projects_disable_xpn_resource_request_resource=request
    )
    compute.wait(op, HOST)


def test_host_and_service_project_lifecycle(compute: Compute) -> None:
    project = compute.projects.get(project=HOST)
    assert project.name == HOST and project.kind == "compute#project"
    assert project.xpn_project_status == "UNSPECIFIED_XPN_PROJECT_STATUS"
    with pytest.raises(exceptions.BadRequest, match="not a shared VPC host"):
        attach(compute)

    op = compute.projects.enable_xpn_host(project=HOST)
    done = compute.wait(op, HOST)
    assert done.operation_type == "enableXpnHost"
    assert done.target_link == f"https://www.googleapis.com/compute/v1/projects/{HOST}"
    assert compute.projects.get(project=HOST).xpn_project_status == "HOST"

    attach(compute)
    resources = compute.projects.get_xpn_resources(project=HOST)
    assert [(r.id, r.type_) for r in resources] == [(SERVICE, "PROJECT")]
    host = compute.projects.get_xpn_host(project=SERVICE)
    assert host.name == HOST and host.xpn_project_status == "HOST"
    hosts = compute.projects.list_xpn_hosts(
        project=SERVICE, projects_list_xpn_hosts_request_resource={}
    )
    assert [h.name for h in hosts] == [HOST]

    # The host stays while a service project is attached.
    with pytest.raises(exceptions.BadRequest, match="service projects attached"):
        compute.projects.disable_xpn_host(project=HOST)
    # A service project is no host, and belongs to one host only.
    with pytest.raises(exceptions.BadRequest, match="service project"):
        compute.projects.enable_xpn_host(project=SERVICE)
    compute.wait(compute.projects.enable_xpn_host(project="proj-other-host"), "proj-other-host")
    with pytest.raises(exceptions.BadRequest, match="already a service project"):
        request = {"xpn_resource": {"id": SERVICE, "type_": "PROJECT"}}
        compute.projects.enable_xpn_resource(
            project="proj-other-host", projects_enable_xpn_resource_request_resource=request
        )

    detach(compute)
    assert list(compute.projects.get_xpn_resources(project=HOST)) == []
    assert compute.projects.get_xpn_host(project=SERVICE).name == ""
    compute.wait(compute.projects.disable_xpn_host(project=HOST), HOST)
    assert compute.projects.get(project=HOST).xpn_project_status == "UNSPECIFIED_XPN_PROJECT_STATUS"


def test_shared_subnet_iam_grants_the_network_user_role(compute: Compute) -> None:
    compute.wait(compute.projects.enable_xpn_host(project=HOST), HOST)
    attach(compute)
    compute.wait(
        compute.networks.insert(
            project=HOST,
            network_resource=compute_v1.Network(name="shared", auto_create_subnetworks=False),
        )
    )
    compute.wait(
        compute.subnetworks.insert(
            project=HOST,
            region=REGION,
            subnetwork_resource=compute_v1.Subnetwork(
                name="apps", ip_cidr_range="10.8.0.0/24", network="global/networks/shared"
            ),
        )
    )
    member = "serviceAccount:123456789012@cloudservices.gserviceaccount.com"
    current = compute.subnetworks.get_iam_policy(project=HOST, region=REGION, resource="apps")
    policy = compute_v1.Policy(
        etag=current.etag,
        bindings=[compute_v1.Binding(role="roles/compute.networkUser", members=[member])],
    )
    compute.subnetworks.set_iam_policy(
        project=HOST,
        region=REGION,
        resource="apps",
        region_set_policy_request_resource=compute_v1.RegionSetPolicyRequest(policy=policy),
    )
    got = compute.subnetworks.get_iam_policy(project=HOST, region=REGION, resource="apps")
    assert [(b.role, list(b.members)) for b in got.bindings] == [
        ("roles/compute.networkUser", [member])
    ]
    assert got.etag != current.etag
    # A stale etag is refused, as Google refuses concurrent read-modify-writes.
    stale = compute_v1.RegionSetPolicyRequest(policy=compute_v1.Policy(etag=current.etag))
    with pytest.raises(exceptions.PreconditionFailed):
        compute.subnetworks.set_iam_policy(
            project=HOST, region=REGION, resource="apps", region_set_policy_request_resource=stale
        )
    with pytest.raises(exceptions.NotFound):
        compute.subnetworks.get_iam_policy(project=HOST, region=REGION, resource="nope")
