"""Generated plans for scripts/bench.py."""

from __future__ import annotations

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"


def wide(projects: int = 4, services: int = 50) -> str:
    """`services` Cloud Run services per project, each behind its own serverless NEG and
    regional backend service; project after project in file order, so the projects are
    identical, independent slices of the plan."""
    out = [
        "name: bench-wide",
        "defaults: {region: europe-west1}",
        "steps:",
    ]
    for p in range(1, projects + 1):
        project = f"wide-project-{p}"
        out += [
            f"  - {{id: p{p}-run, kind: serviceusage.service, name: run.googleapis.com,"
            f" project: {project}}}",
            f"  - {{id: p{p}-compute, kind: serviceusage.service, name: compute.googleapis.com,"
            f" project: {project}}}",
        ]
        for i in range(1, services + 1):
            out += [
                f"  - id: p{p}-svc{i}",
                "    kind: run.service",
                f"    name: svc-{i}",
                f"    project: {project}",
                "    properties:",
                "      ingress: INGRESS_TRAFFIC_INTERNAL_ONLY",
                f"      template: {{containers: [{{image: '{IMAGE}'}}]}}",
                f"    depends_on: [p{p}-run]",
                f"  - id: p{p}-neg{i}",
                "    kind: compute.region_network_endpoint_group",
                f"    name: neg-{i}",
                f"    project: {project}",
                "    properties:",
                "      networkEndpointType: SERVERLESS",
                f"      cloudRun: {{service: svc-{i}}}",
                f"    depends_on: [p{p}-compute, p{p}-svc{i}]",
                f"  - id: p{p}-bes{i}",
                "    kind: compute.region_backend_service",
                f"    name: bes-{i}",
                f"    project: {project}",
                "    properties:",
                "      loadBalancingScheme: INTERNAL_MANAGED",
                "      protocol: HTTPS",
                f"      backends: [{{group: '${{p{p}-neg{i}.selfLink}}', "
                "balancingMode: UTILIZATION, capacityScaler: 1.0}]",
            ]
    return "\n".join(out) + "\n"
