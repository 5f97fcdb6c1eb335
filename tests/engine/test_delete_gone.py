"""A delete that finds nothing is done, in whatever words the API says so (#15)."""

from __future__ import annotations

from ..emulator.conftest import _discovery_client
from ..emulator.test_servicenetworking import wait
from .test_day2_recovery import _killed_before_the_delete_call

PSA = """
name: psa
defaults: {project: psa-project}
steps:
  - id: vpc
    kind: compute.network
    name: psa-vpc
    properties: {autoCreateSubnetworks: false}
  - id: range
    kind: compute.global_address
    name: psa-range
    properties:
      purpose: VPC_PEERING
      addressType: INTERNAL
      prefixLength: 22
      network: ${vpc.selfLink}
  - id: psa
    kind: servicenetworking.connection
    name: psa-vpc
    properties:
      network: ${vpc.selfLink}
      reservedPeeringRanges: ["${range.name}"]
"""


def test_a_destroy_killed_after_google_deleted_the_connection_finishes(emulator, deploy) -> None:
    """Killed right after deleteConnection was answered: the ledger still says deleting, and
    Google now answers 400 "There is no peering" to the delete."""
    dep = deploy(PSA)
    assert dep.apply().ok
    project = _discovery_client(emulator.url, "cloudresourcemanager", "v3").projects()
    number = project.get(name="projects/psa-project").execute()["name"].split("/")[1]
    api = _discovery_client(emulator.url, "servicenetworking", "v1")
    connections = api.services().connections()
    body = {"consumerNetwork": f"projects/{number}/global/networks/psa-vpc"}
    wait(emulator, api, connections.deleteConnection(
        name="services/servicenetworking.googleapis.com/connections/servicenetworking-googleapis"
        "-com", body=body).execute())
    _killed_before_the_delete_call(lambda: deploy(PSA), "psa")
    result = deploy(PSA).destroy()
    assert result.ok, result.failures
    assert deploy(PSA).ledger().resources == {}
    assert not any(emulator.dump()["resources"].get("compute", {}))
