"""Time loading and validating a generated plan: python scripts/bench_validate.py [STEPS]."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def generate(steps: int) -> str:
    out = [
        "name: bench",
        "vars: {project: demo-project, region: europe-west1}",
        "defaults: {project: '${vars.project}', region: '${vars.region}'}",
        "steps:",
        "  - id: vpc",
        "    kind: compute.network",
        "    name: vpc",
        "    properties: {autoCreateSubnetworks: false, routingConfig: {routingMode: GLOBAL}}",
    ]
    for i in range(1, steps):
        if i % 2:
            out += [
                f"  - id: s{i}",
                "    kind: compute.subnetwork",
                f"    name: s{i}",
                "    properties:",
                "      network: ${vpc.selfLink}",
                f"      ipCidrRange: 10.{i // 256}.{i % 256}.0/24",
                "      privateIpGoogleAccess: true",
            ]
        else:
            out += [
                f"  - id: fw{i}",
                "    kind: compute.firewall",
                f"    name: fw{i}",
                "    timeout: 5m",
                "    properties:",
                "      network: ${vpc.selfLink}",
                f"      sourceRanges: ['${{s{i - 1}.ipCidrRange}}']",
                "      allowed: [{IPProtocol: tcp, ports: ['443', '8443']}]",
            ]
    return "\n".join(out) + "\n"


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    start = time.perf_counter()
    from orchestrator.plan import load_plan
    from orchestrator.plan.source import parser_name

    imported = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(generate(steps))
        lines = path.read_text().count("\n")
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            plan = load_plan(path)
            timings.append(time.perf_counter() - start)
    assert len(plan.steps) == steps
    print(f"parser: {parser_name()}; {steps} steps, {lines} lines")
    print(f"import orchestrator.plan: {imported * 1000:.0f} ms")
    print(f"first load (discovery documents read): {timings[0] * 1000:.0f} ms")
    print(f"later loads: best {min(timings[1:]) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
