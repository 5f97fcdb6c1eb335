"""`provision roles`: the roles a plan needs, from its kinds' declarations; and the README's
table of them, which must be what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _provision(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_roles_of_a_plan_per_project_with_shared_vpc_s_above_them() -> None:
    done = _provision("roles", "plans/shared-vpc-hub.yaml", "--json")
    assert done.returncode == 0, done.stderr
    needed = json.loads(done.stdout)
    assert needed["organization or folder"] == ["roles/compute.xpnAdmin"]
    assert "roles/apigee.admin" in needed["projects/apigee-service-project"]
    # Firewall rules are the security admin's, not the network admin's.
    assert needed["projects/backend-spoke-a"] == [
        "roles/compute.networkAdmin", "roles/compute.securityAdmin",
        "roles/serviceusage.serviceUsageAdmin"]


def test_roles_of_an_invalid_plan_exit_2(tmp_path: Path) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text("name: bad\nsteps:\n  - id: x\n    kind: compute.nothing\n    name: x\n")
    done = _provision("roles", str(plan))
    assert done.returncode == 2 and "bad.yaml:4" in done.stderr, done.stderr


def test_the_readme_table_is_what_the_kinds_declare() -> None:
    done = subprocess.run([sys.executable, "scripts/readme_roles.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
