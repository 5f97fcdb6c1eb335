"""Health checks, the backend services that use them with instance-group backends, and the
health those backends report (getHealth), registered on compute's rules.

A group's instance is HEALTHY once it has been RUNNING for healthyThreshold probes
(checkIntervalSec apart) and the VPC firewall admits Google's probes to the checked port from
both of its ranges, 35.191.0.0/16 and 130.211.0.0/22 ("For the health check probes to reach your
backends, you must create an ingress allow firewall rule", https://cloud.google.com/load-balancing/docs/firewall-rules,
and https://cloud.google.com/load-balancing/docs/health-check-concepts#ip-ranges). The
emulator's instances run no software: whatever a probe asks of a RUNNING instance it answers.
Google does not say what getHealth reports for an instance not yet RUNNING: UNHEALTHY here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provision_emulator import generic
from provision_emulator.apis import compute, firewalls, instance_groups
from provision_emulator.call import Call
from provision_emulator.errors import ApiError

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

CHECKS = ("healthChecks", "regionHealthChecks")
BACKEND_SERVICES = ("backendServices", "regionBackendServices")
PROBE_SOURCES = ("35.191.0.1", "130.211.0.1")  # one address of each of Google's probe ranges
# HealthCheck.type -> its protocol-specific field, and the port each defaults to (the
# discovery document: TCP and HTTP "The default value is 80", HTTPS, HTTP2 and SSL 443;
# GRPC states none).
SUB_OBJECT = {"TCP": ("tcpHealthCheck", 80), "SSL": ("sslHealthCheck", 443),
              "HTTP": ("httpHealthCheck", 80), "HTTPS": ("httpsHealthCheck", 443),
              "HTTP2": ("http2HealthCheck", 443), "GRPC": ("grpcHealthCheck", None),
              "GRPC_WITH_TLS": ("grpcTlsHealthCheck", None)}
WITH_PATH = ("HTTP", "HTTPS", "HTTP2")
APPLICATION = ("HTTP", "HTTPS", "HTTP2")
MAX_THRESHOLD = 10  # observed: "Must be less than or equal to 10" (firezone/firezone#9218)
GROUP_COLLECTIONS = ("regionInstanceGroups", "instanceGroups")


# --- health checks -----------------------------------------------------------------------------


@compute.RULES.on_create(*CHECKS)
def _health_check(cloud: Cloud, call: Call, body: dict[str, Any]) -> None:
    _check_health_check(body)


@compute.RULES.on_update(*CHECKS)
def _health_check_update(cloud: Cloud, call: Call, res: Any, body: dict[str, Any]) -> None:
    _check_health_check(body)


def _check_health_check(body: dict[str, Any]) -> None:
    """HealthCheck's defaults (5 s interval, 5 s timeout, thresholds of 2; "It is invalid for
    timeoutSec to have greater value than checkIntervalSec"; "Exactly one of the
    protocol-specific health check fields must be specified, which must match type field",
    the discovery document) and Google's words refusing them (observed: "TimeoutSec should be
    less than checkIntervalSec.", GoogleCloudPlatform/click-to-deploy#934; "HTTP healthCheck
    missing.", TerriaJS/terriajs#5633)."""
    kind = body.get("type")
    if kind not in SUB_OBJECT:
        raise compute.invalid_field("type", kind or "", "Must be one of "
                                    f"{', '.join(SUB_OBJECT)}.")
    field, port = SUB_OBJECT[kind]
    sub = body.get(field)
    if not isinstance(sub, dict):
        raise compute.invalid_field(field, "", f"{kind} healthCheck missing.")
    others = [f for f, _ in SUB_OBJECT.values() if f != field and body.get(f)]
    if others:  # Google's words for this one are not known (*ours*)
        raise compute.invalid_field(others[0], "", f"Only {field} may be set for a health "
                                    f"check of type {kind}.")
    if port is not None and "port" not in sub and sub.get("portSpecification") != (
            "USE_SERVING_PORT"):
        sub["port"] = port
    if kind in WITH_PATH:
        sub.setdefault("requestPath", "/")
    for name, default in (("checkIntervalSec", 5), ("timeoutSec", 5),
                          ("healthyThreshold", 2), ("unhealthyThreshold", 2)):
        body.setdefault(name, default)
    if body["timeoutSec"] > body["checkIntervalSec"]:
        raise compute.invalid_field("timeoutSec", body["timeoutSec"],
                                    "TimeoutSec should be less than checkIntervalSec.")
    for name in ("healthyThreshold", "unhealthyThreshold"):
        if body[name] > MAX_THRESHOLD:
            raise compute.invalid_field(name, body[name],
                                        f"Must be less than or equal to {MAX_THRESHOLD}")


def checked_port(check: dict[str, Any]) -> int | None:
    field, default = SUB_OBJECT.get(check.get("type", ""), ("", None))
    port = (check.get(field) or {}).get("port", default)
    return int(port) if port is not None else None


# --- backend services with instance-group backends ---------------------------------------------


def _groups(cloud: Cloud, call: Call, body: dict[str, Any]) -> list[tuple[int, Any]]:
    out = []
    for i, backend in enumerate(body.get("backends") or []):
        group = cloud.resolve(call, backend.get("group") or "")
        if group is not None and group.collection in GROUP_COLLECTIONS:
            out.append((i, group))
    return out


@compute.RULES.on_create(*BACKEND_SERVICES)
@compute.RULES.on_update(*BACKEND_SERVICES)
def _instance_group_backends(cloud: Cloud, call: Call, *args: Any) -> None:
    """BackendService.healthChecks: "at most one health check can be specified ... Backend
    services with instance group or zonal NEG backends must have a health check" (the
    discovery document; observed: "maximum size 1 element(s)", kubernetes/kops's GCE model,
    and "At least one health check needs to be specified."). An INTERNAL backend service's
    groups balance by connection (observed: "Balancing mode must be CONNECTION for an INTERNAL
    backend service.", terraform-google-modules/terraform-google-lb-internal#146); CONNECTION
    behind an Application Load Balancer needs a connection limit (observed:
    hashicorp/terraform#11630). Google does not document the default mode: CONNECTION for
    INTERNAL, else UTILIZATION here."""
    body = args[-1]
    checks = body.get("healthChecks") or []
    if len(checks) > 1:
        raise ApiError(400, "Value for field 'resource.healthChecks' is too large: maximum size "
                       f"1 element(s); actual size {len(checks)}.", reason="invalid")
    groups = _groups(cloud, call, body)
    if groups and not checks:
        raise compute.invalid_field("healthChecks", "",
                                    "At least one health check needs to be specified.")
    internal = body.get("loadBalancingScheme") == "INTERNAL"
    for i, _ in groups:
        backend = body["backends"][i]
        mode = backend.setdefault("balancingMode", "CONNECTION" if internal else "UTILIZATION")
        if internal and mode != "CONNECTION":
            raise compute.invalid_field(f"backends[{i}].balancingMode", mode, "Balancing mode "
                                        "must be CONNECTION for an INTERNAL backend service.")
        # Application Load Balancers only: a passthrough's CONNECTION mode takes no limit.
        if body.get("protocol") in APPLICATION and mode == "CONNECTION" and not any(
                backend.get(k) for k in ("maxConnections", "maxConnectionsPerInstance",
                                         "maxConnectionsPerEndpoint")):
            raise compute.invalid_field(f"backends[{i}].balancingMode", mode, "Either "
                                        "maxConnections or maxConnectionsPerInstance should be "
                                        "set with CONNECTION mode.")


# --- getHealth ---------------------------------------------------------------------------------


@compute.RULES.handler("compute.backendServices.getHealth",
                       "compute.regionBackendServices.getHealth")
def get_health(cloud: Cloud, call: Call) -> dict[str, Any]:
    """ResourceGroupReference.group: "one of the instance groups or network endpoint groups
    listed in the backend service"; HealthStatus.port: "The named port of the instance group,
    not necessarily the port that is health-checked" (the discovery document)."""
    service = generic.existing(cloud, call, call.path, generic.collection(call))
    link = (call.body or {}).get("group") or ""
    group = cloud.resolve(call, link)
    listed = group is not None and any(b.get("group") == compute.self_link(group.path)
                                       for b in service.body.get("backends") or [])
    if group is None or not listed:  # Google's words not known (*ours*)
        raise compute.invalid_field("group", link, "Must be a group listed in the backend "
                                    "service's backends.")
    out: dict[str, Any] = {"kind": "compute#backendServiceGroupHealth"}
    manager = instance_groups.manager_of(cloud, group) if (
        group.collection == instance_groups.GROUPS) else None
    if manager is None:
        return out
    check = _check_of(cloud, service.body)
    named = {p["name"]: p["port"] for p in group.body.get("namedPorts") or []}
    reported = named.get(service.body.get("portName", ""),
                         checked_port(check) if check else None)
    statuses = []
    for member in instance_groups.members(cloud, manager):
        status: dict[str, Any] = {"instance": compute.self_link(member.path),
                                  "healthState": "HEALTHY" if healthy(cloud, service.body, member)
                                  else "UNHEALTHY"}
        if member.ip:
            status["ipAddress"] = member.ip
        if reported is not None:
            status["port"] = reported
        statuses.append(status)
    if statuses:
        out["healthStatus"] = statuses
    return out


def _check_of(cloud: Cloud, service: dict[str, Any]) -> dict[str, Any] | None:
    links = service.get("healthChecks") or []
    found = compute.stored(cloud, links[0]) if links else None
    return found.body if found else None


def healthy(cloud: Cloud, service: dict[str, Any], member: Any) -> bool:
    """Whether the backend service's health check finds the group member healthy."""
    check = _check_of(cloud, service)
    port = checked_port(check) if check else None
    if check is None or port is None or member.running_since is None:
        return False
    settled = cloud.scaled(check.get("checkIntervalSec", 5) * check.get("healthyThreshold", 2))
    if cloud.now() < member.running_since + settled:
        return False
    protocol = "tcp"  # every health-check type is carried over TCP
    return all(firewalls.allowed(firewalls.deciding_rule(
        cloud, member.network, source, protocol, port, set(member.tags)))
        for source in PROBE_SOURCES)
