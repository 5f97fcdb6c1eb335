"""Fleet benchmark: many instances of a plan, applied and destroyed by one fleet runner on an
in-process emulator's virtual clock.

    python scripts/fleet_bench.py [--basics 100] [--architecture-a 10] [--concurrency 16]

Two fleets: N instances of plans/network-basics.yaml (a project each), and M of architecture A
(plans/psc-cloud-run.yaml, an Apigee project, so an organization, and a backend project each).
For each it prints the fleet's wall (simulated seconds) against its slowest instance, real
seconds, peak RSS, and checks the emulator's operation log: no Apigee organization ever had two
operations running at once, and every instance's resources are gone after destroy (but for its
enabled APIs, which destroy leaves enabled by design).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from orchestrator.fleet.model import load_fleet
from orchestrator.fleet.runner import FleetResult, Runner
from orchestrator.fleet.session import open_session
from provision_emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent


def fleet_file(tmp: Path, name: str, plan: str, instances: list[str], concurrency: int) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(f"name: {name}\nplan: {ROOT / plan}\nstate: {tmp / name}\n"
                    f"concurrency: {concurrency}\ninstances:\n" + "".join(instances))
    return path


def overlapping_org_operations(ops: list[dict[str, Any]]) -> list[str]:
    """Apigee organizations that ever had two operations running at once."""
    by_org: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for op in ops:
        if op["api"] == "apigee" and op["path"].startswith("organizations/"):
            by_org[op["path"].split("/")[1]].append((op["start"], op["end"]))
    out = []
    for org, spans in by_org.items():
        spans.sort()
        if any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)):
            out.append(org)
    return out


def measure(emu: Emulator, path: Path, tmp: Path) -> dict[str, Any]:
    fleet = load_fleet(path)
    out: dict[str, Any] = {"instances": len(fleet.instances)}
    with open_session(emu, tmp) as session, session.clock.busy():
        runner = Runner(fleet, emulator=session.emulator, clock=session.clock,
                        storage=session.storage, state_dir=tmp / ".provision")
        for command in ("apply", "destroy"):
            start = time.monotonic()
            result: FleetResult = runner.run(command)
            out[command] = {
                "ok": result.ok,
                "counts": result.counts(),
                "wall": result.wall,
                "slowest": max(r.elapsed for r in result.instances),
                "real": time.monotonic() - start,
                "failures": [f"{r.name}: {r.message}" for r in result.instances if not r.ok][:3],
            }
    ops = emu.dump()["operations"]
    out["apigee_operations"] = sum(1 for o in ops if o["api"] == "apigee")
    out["overlapping_orgs"] = overlapping_org_operations(ops)
    # Enabled APIs are their project's: destroy leaves them enabled, by design.
    out["left"] = {api: len(found) for api, found in emu.dump()["resources"].items()
                   if found and api != "serviceusage"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--basics", type=int, default=100)
    parser.add_argument("--architecture-a", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"command: python {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmpdir:
        tmp = Path(tmpdir)
        fleets = {
            f"{args.basics} x network-basics": fleet_file(
                tmp, "basics", "plans/network-basics.yaml", [
                    f"  - {{name: b{i:03}, vars: {{project: basics-{i:03}}}}}\n"
                    for i in range(args.basics)], args.concurrency),
            f"{args.architecture_a} x architecture A": fleet_file(
                tmp, "arch-a", "plans/psc-cloud-run.yaml", [
                    f"  - {{name: a{i:02}, vars: {{apigee_project: apigee-{i:02}, "
                    f"backend_project: backend-{i:02}}}}}\n"
                    for i in range(args.architecture_a)], args.concurrency),
        }
        for label, path in fleets.items():
            with Emulator(faults={"latency": 0.1}, quotas=True) as emu:
                got = measure(emu, path, tmp / label.replace(" ", "-"))
            print(f"\n{label}:")
            for command in ("apply", "destroy"):
                phase = got[command]
                print(f"  {command}: {'ok' if phase['ok'] else 'FAILED'} {phase['counts']}; "
                      f"fleet {phase['wall']:,.0f} s simulated, slowest instance "
                      f"{phase['slowest']:,.0f} s (x{phase['wall'] / phase['slowest']:.2f}); "
                      f"{phase['real']:.0f} s real")
                for failure in phase["failures"]:
                    print(f"    {failure}")
            print(f"  Apigee operations: {got['apigee_operations']}; organizations with two at "
                  f"once: {len(got['overlapping_orgs'])} {got['overlapping_orgs'][:3]}; "
                  f"left after destroy, by API: {got['left'] or 'nothing'}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MiB (this process, with its in-process emulators)")


if __name__ == "__main__":
    main()
