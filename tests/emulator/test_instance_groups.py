"""Instance templates, a regional managed instance group, its autoscaler, health checks and the
health its instances report, through google-cloud-compute: instances come up at Google's pace,
and Google's refusals for these resources."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from provision_emulator import Emulator

from .conftest import PROJECT, REGION, Compute

ZONES = [f"{REGION}-a", f"{REGION}-b"]
PROBE_RANGES = ["35.191.0.0/16", "130.211.0.0/22"]


def link(path: str) -> str:
    return f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/{path}"


def base(compute: Compute, *, template: str = "web-v1") -> None:
    compute.wait(compute.networks.insert(project=PROJECT, network_resource=compute_v1.Network(
        name="net", auto_create_subnetworks=False)))
    compute.wait(compute.subnetworks.insert(
        project=PROJECT, region=REGION, subnetwork_resource=compute_v1.Subnetwork(
            name="subnet", ip_cidr_range="10.8.0.0/24", network="global/networks/net")))
    compute.wait(compute.instance_templates.insert(
        project=PROJECT, instance_template_resource=instance_template(template)))


def instance_template(name: str, **props: object) -> compute_v1.InstanceTemplate:
    return compute_v1.InstanceTemplate(name=name, properties=compute_v1.InstanceProperties(
        machine_type="e2-small",
        tags=compute_v1.Tags(items=["web"]),
        disks=[compute_v1.AttachedDisk(boot=True, auto_delete=True,
                                       initialize_params=compute_v1.AttachedDiskInitializeParams(
                                           source_image="projects/debian-cloud/global/images/"
                                                        "family/debian-12"))],
        network_interfaces=[compute_v1.NetworkInterface(
            subnetwork=link(f"regions/{REGION}/subnetworks/subnet"))],
        **props))


def group(compute: Compute, size: int = 2, template: str = "web-v1") -> None:
    manager = compute_v1.InstanceGroupManager(
        name="web", base_instance_name="web", target_size=size,
        instance_template=link(f"global/instanceTemplates/{template}"),
        distribution_policy=compute_v1.DistributionPolicy(zones=[
            compute_v1.DistributionPolicyZoneConfiguration(zone=link(f"zones/{z}"))
            for z in ZONES]))
    compute.wait(compute.region_instance_group_managers.insert(
        project=PROJECT, region=REGION, instance_group_manager_resource=manager))


def managed(compute: Compute) -> list[compute_v1.ManagedInstance]:
    return list(compute.region_instance_group_managers.list_managed_instances(
        project=PROJECT, region=REGION, instance_group_manager="web"))


def manager(compute: Compute) -> compute_v1.InstanceGroupManager:
    return compute.region_instance_group_managers.get(
        project=PROJECT, region=REGION, instance_group_manager="web")


def test_a_group_s_instances_come_up_at_google_s_pace(compute: Compute,
                                                       emulator: Emulator) -> None:
    base(compute)
    group(compute)
    mig = manager(compute)
    # "marked as DONE when the group is created even if the instances ... have not yet been
    # created" (regionInstanceGroupManagers.insert)
    assert not mig.status.is_stable and mig.current_actions.creating == 2
    assert mig.instance_group == link(f"regions/{REGION}/instanceGroups/web")
    instances = managed(compute)
    assert [i.instance_status for i in instances] == ["PROVISIONING", "PROVISIONING"]
    assert {i.current_action for i in instances} == {"CREATING"}
    zones = sorted(i.instance.split("/zones/")[1].split("/")[0] for i in instances)
    assert zones == ZONES
    names = [i.instance.rsplit("/", 1)[1] for i in instances]
    assert all(n.startswith("web-") and len(n) == len("web-") + 4 for n in names)

    emulator.skip(25)
    assert {i.instance_status for i in managed(compute)} == {"STAGING"}
    emulator.skip(25)
    assert {i.instance_status for i in managed(compute)} == {"RUNNING"}
    mig = manager(compute)
    assert mig.status.is_stable and mig.current_actions.none == 2
    vm = compute.instances.get(project=PROJECT, zone=ZONES[0], instance=names[
        [i.instance for i in instances].index(next(i.instance for i in instances
                                                   if ZONES[0] in i.instance))])
    assert vm.status == "RUNNING" and vm.network_interfaces[0].network_i_p.startswith("10.8.0.")
    assert vm.tags.items == ["web"]
    ig = compute.region_instance_groups.get(project=PROJECT, region=REGION, instance_group="web")
    assert ig.size == 2


def test_named_ports_are_the_instance_group_s_and_need_its_fingerprint(
        compute: Compute, emulator: Emulator) -> None:
    base(compute)
    group(compute)
    ig = compute.region_instance_groups.get(project=PROJECT, region=REGION, instance_group="web")
    ports = [compute_v1.NamedPort(name="https", port=443)]
    with pytest.raises(exceptions.PreconditionFailed):
        compute.region_instance_groups.set_named_ports(
            project=PROJECT, region=REGION, instance_group="web",
            region_instance_groups_set_named_ports_request_resource=compute_v1.
            RegionInstanceGroupsSetNamedPortsRequest(named_ports=ports, fingerprint="stale"))
    compute.wait(compute.region_instance_groups.set_named_ports(
        project=PROJECT, region=REGION, instance_group="web",
        region_instance_groups_set_named_ports_request_resource=compute_v1.
        RegionInstanceGroupsSetNamedPortsRequest(named_ports=ports, fingerprint=ig.fingerprint)))
    assert [(p.name, p.port) for p in manager(compute).named_ports] == [("https", 443)]


def test_an_autoscaler_sizes_the_group_and_google_refuses_a_resize(
        compute: Compute, emulator: Emulator) -> None:
    base(compute)
    group(compute, size=2)
    emulator.skip(60)

    def scaler(low: int, high: int | None) -> compute_v1.Autoscaler:
        return compute_v1.Autoscaler(
            name="web", target=link(f"regions/{REGION}/instanceGroupManagers/web"),
            autoscaling_policy=compute_v1.AutoscalingPolicy(min_num_replicas=low,
                                                            max_num_replicas=high))

    with pytest.raises(exceptions.BadRequest, match="maxNumReplicas"):
        compute.region_autoscalers.insert(project=PROJECT, region=REGION,
                                          autoscaler_resource=scaler(3, None))
    with pytest.raises(exceptions.BadRequest, match="must not be lower"):
        compute.region_autoscalers.insert(project=PROJECT, region=REGION,
                                          autoscaler_resource=scaler(3, 2))
    compute.wait(compute.region_autoscalers.insert(project=PROJECT, region=REGION,
                                                   autoscaler_resource=scaler(3, 5)))
    live = compute.region_autoscalers.get(project=PROJECT, region=REGION, autoscaler="web")
    assert live.recommended_size == 3 and live.autoscaling_policy.cpu_utilization.\
        utilization_target == pytest.approx(0.6)
    mig = manager(compute)
    assert mig.target_size == 3 and mig.current_actions.creating == 1  # the new one only
    assert mig.status.autoscaler.endswith("/autoscalers/web")
    with pytest.raises(exceptions.PreconditionFailed, match="autoscaled regional"):
        compute.region_instance_group_managers.resize(
            project=PROJECT, region=REGION, instance_group_manager="web", size=5)
    # patch names the autoscaler in the query
    compute.wait(compute.region_autoscalers.patch(request=compute_v1.PatchRegionAutoscalerRequest(
        project=PROJECT, region=REGION, autoscaler="web",
        autoscaler_resource=compute_v1.Autoscaler(
            name="web", autoscaling_policy=compute_v1.AutoscalingPolicy(
                min_num_replicas=4, max_num_replicas=5)))))
    mig = manager(compute)
    # the third VM and the fourth, needed since the autoscaler asked for them
    assert mig.target_size == 4 and mig.current_actions.creating == 2
    compute.wait(compute.region_autoscalers.delete(project=PROJECT, region=REGION,
                                                   autoscaler="web"))
    assert manager(compute).target_size == 4  # the group keeps the size it was left at


def health_check(compute: Compute, name: str = "hc", **fields: object) -> None:
    body = compute_v1.HealthCheck(name=name, **fields)
    compute.wait(compute.region_health_checks.insert(project=PROJECT, region=REGION,
                                                     health_check_resource=body))


def test_health_check_defaults_and_refusals(compute: Compute) -> None:
    health_check(compute, type_="HTTPS",
                 https_health_check=compute_v1.HTTPSHealthCheck(request_path="/healthz"))
    hc = compute.region_health_checks.get(project=PROJECT, region=REGION, health_check="hc")
    assert (hc.check_interval_sec, hc.timeout_sec, hc.healthy_threshold,
            hc.unhealthy_threshold, hc.https_health_check.port) == (5, 5, 2, 2, 443)
    with pytest.raises(exceptions.BadRequest,
                       match="TimeoutSec should be less than checkIntervalSec"):
        health_check(compute, "slow", type_="TCP", tcp_health_check=compute_v1.TCPHealthCheck(),
                     check_interval_sec=5, timeout_sec=6)
    with pytest.raises(exceptions.BadRequest, match="HTTP healthCheck missing"):
        health_check(compute, "bare", type_="HTTP")


def backend_service(compute: Compute, **fields: object) -> None:
    body = compute_v1.BackendService(name="web", **fields)
    compute.wait(compute.region_backend_services.insert(project=PROJECT, region=REGION,
                                                        backend_service_resource=body))


def group_backend(**fields: object) -> compute_v1.Backend:
    return compute_v1.Backend(group=link(f"regions/{REGION}/instanceGroups/web"), **fields)


def test_instance_group_backends_need_a_health_check_and_internal_ones_connection_balancing(
        compute: Compute) -> None:
    base(compute)
    group(compute)
    health_check(compute, type_="TCP", tcp_health_check=compute_v1.TCPHealthCheck(port=80))
    with pytest.raises(exceptions.BadRequest, match="At least one health check"):
        backend_service(compute, load_balancing_scheme="INTERNAL", protocol="TCP",
                        backends=[group_backend()])
    with pytest.raises(exceptions.BadRequest,
                       match="Balancing mode must be CONNECTION for an INTERNAL"):
        backend_service(compute, load_balancing_scheme="INTERNAL", protocol="TCP",
                        health_checks=[link(f"regions/{REGION}/healthChecks/hc")],
                        backends=[group_backend(balancing_mode="UTILIZATION")])
    backend_service(compute, load_balancing_scheme="INTERNAL", protocol="TCP",
                    health_checks=[link(f"regions/{REGION}/healthChecks/hc")],
                    backends=[group_backend()])
    live = compute.region_backend_services.get(project=PROJECT, region=REGION,
                                               backend_service="web")
    assert live.backends[0].balancing_mode == "CONNECTION"
    # The group is the backend's: neither it nor its template goes while they are used.
    with pytest.raises(exceptions.BadRequest, match="already being used"):
        compute.region_instance_group_managers.delete(project=PROJECT, region=REGION,
                                                      instance_group_manager="web")
    with pytest.raises(exceptions.BadRequest, match="already being used"):
        compute.instance_templates.delete(project=PROJECT, instance_template="web-v1")
    compute.wait(compute.region_backend_services.delete(project=PROJECT, region=REGION,
                                                        backend_service="web"))
    compute.wait(compute.region_instance_group_managers.delete(
        project=PROJECT, region=REGION, instance_group_manager="web"))
    with pytest.raises(exceptions.NotFound):
        compute.region_instance_groups.get(project=PROJECT, region=REGION, instance_group="web")
    assert not list(compute.instances.list(project=PROJECT, zone=ZONES[0]))


def firewall(compute: Compute, name: str, tags: list[str], port: str = "80") -> None:
    compute.wait(compute.firewalls.insert(project=PROJECT, firewall_resource=compute_v1.Firewall(
        name=name, network="global/networks/net", source_ranges=PROBE_RANGES,
        target_tags=tags, allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=[port])])))


def internal_backend_service(compute: Compute) -> None:
    """The group behind an INTERNAL backend service with a TCP health check on port 80."""
    base(compute)
    group(compute)
    health_check(compute, type_="TCP", tcp_health_check=compute_v1.TCPHealthCheck(port=80))
    backend_service(compute, load_balancing_scheme="INTERNAL", protocol="TCP",
                    health_checks=[link(f"regions/{REGION}/healthChecks/hc")],
                    backends=[group_backend()])


def health(compute: Compute) -> list[str]:
    found = compute.region_backend_services.get_health(
        project=PROJECT, region=REGION, backend_service="web",
        resource_group_reference_resource=compute_v1.ResourceGroupReference(
            group=link(f"regions/{REGION}/instanceGroups/web")))
    return [s.health_state for s in found.health_status]


def test_instances_are_healthy_once_running_and_reached_by_google_s_probes(
        compute: Compute, emulator: Emulator) -> None:
    internal_backend_service(compute)
    firewall(compute, "probes-elsewhere", ["other"])
    assert health(compute) == ["UNHEALTHY", "UNHEALTHY"]  # still PROVISIONING
    emulator.skip(60)
    assert health(compute) == ["UNHEALTHY", "UNHEALTHY"]  # RUNNING, but the probes are denied
    firewall(compute, "probes", ["web"], port="80")
    assert health(compute) == ["HEALTHY", "HEALTHY"]
    with pytest.raises(exceptions.BadRequest, match="group"):
        compute.region_backend_services.get_health(
            project=PROJECT, region=REGION, backend_service="web",
            resource_group_reference_resource=compute_v1.ResourceGroupReference(
                group=link(f"regions/{REGION}/instanceGroups/other")))


def test_a_passthrough_rule_serves_one_to_five_ports(compute: Compute) -> None:
    internal_backend_service(compute)

    def rule(name: str, **fields: object) -> None:
        compute.wait(compute.forwarding_rules.insert(
            project=PROJECT, region=REGION, forwarding_rule_resource=compute_v1.ForwardingRule(
                name=name, load_balancing_scheme="INTERNAL", I_p_protocol="TCP",
                backend_service=link(f"regions/{REGION}/backendServices/web"),
                subnetwork=link(f"regions/{REGION}/subnetworks/subnet"), **fields)))

    with pytest.raises(exceptions.BadRequest, match="must specify at least one port"):
        rule("none")
    with pytest.raises(exceptions.BadRequest, match="Too many ports specified. Maximum is 5"):
        rule("six", ports=[str(p) for p in range(80, 86)])
    rule("web", ports=["80"])


def test_a_template_needs_a_machine_type(compute: Compute) -> None:
    base(compute)
    body = instance_template("bare")
    body.properties.machine_type = ""
    with pytest.raises(exceptions.BadRequest, match="machineType"):
        compute.instance_templates.insert(project=PROJECT, instance_template_resource=body)


def test_connection_balancing_outside_internal_needs_a_connection_limit(
        compute: Compute) -> None:
    base(compute)
    group(compute)
    compute.wait(compute.health_checks.insert(project=PROJECT, health_check_resource=compute_v1.
                                              HealthCheck(name="hc", type_="TCP",
                                                          tcp_health_check=compute_v1.
                                                          TCPHealthCheck(port=80))))
    with pytest.raises(exceptions.BadRequest, match="Either maxConnections or "
                       "maxConnectionsPerInstance should be set with CONNECTION mode"):
        compute.backend_services.insert(project=PROJECT, backend_service_resource=compute_v1.
                                        BackendService(
                                            name="web", load_balancing_scheme="EXTERNAL_MANAGED",
                                            protocol="HTTP",
                                            health_checks=[link("global/healthChecks/hc")],
                                            backends=[group_backend(balancing_mode="CONNECTION")]))


def test_a_new_template_makes_new_instances_and_a_proactive_update_replaces_the_old(
        compute: Compute, emulator: Emulator) -> None:
    base(compute)
    group(compute)
    emulator.skip(60)
    compute.wait(compute.instance_templates.insert(project=PROJECT,
                                                   instance_template_resource=instance_template(
                                                       "web-v2")))

    def patch(**fields: object) -> None:
        compute.wait(compute.region_instance_group_managers.patch(
            project=PROJECT, region=REGION, instance_group_manager="web",
            instance_group_manager_resource=compute_v1.InstanceGroupManager(
                fingerprint=manager(compute).fingerprint, **fields)))

    def templates() -> list[str]:
        return [i.version.instance_template.rsplit("/", 1)[1] for i in managed(compute)]

    patch(instance_template=link("global/instanceTemplates/web-v2"), target_size=3)
    # Opportunistic: the running VMs keep theirs; the one the group grew by is of the new one.
    assert templates() == ["web-v1", "web-v1", "web-v2"]
    assert [i.instance_status for i in managed(compute)] == ["RUNNING", "RUNNING",
                                                             "PROVISIONING"]
    names = {i.instance for i in managed(compute)}
    patch(update_policy=compute_v1.InstanceGroupManagerUpdatePolicy(type_="PROACTIVE"),
          instance_template=link("global/instanceTemplates/web-v1"))
    assert templates() == ["web-v1"] * 3 and not names & {i.instance for i in managed(compute)}


def test_an_instance_made_on_its_own_reads_back_beside_a_group_s(
        compute: Compute, emulator: Emulator) -> None:
    base(compute)
    group(compute)
    compute.wait(compute.instances.insert(
        project=PROJECT, zone=ZONES[0], instance_resource=compute_v1.Instance(
            name="solo", machine_type=f"zones/{ZONES[0]}/machineTypes/e2-small",
            network_interfaces=[compute_v1.NetworkInterface(
                subnetwork=link(f"regions/{REGION}/subnetworks/subnet"))])))
    assert compute.instances.get(project=PROJECT, zone=ZONES[0], instance="solo").name == "solo"
    names = [i.name for i in compute.instances.list(project=PROJECT, zone=ZONES[0])]
    assert "solo" in names and len(names) == 2  # and the group's VM in that zone
