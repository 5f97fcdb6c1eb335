"""Against Google itself: apply and destroy plans/network-basics.yaml in the project named by
PROVISION_LIVE_PROJECT, with the caller's Application Default Credentials (or
GOOGLE_APPLICATION_CREDENTIALS). Skipped without it: no machine of this project reaches Google.

    PROVISION_LIVE_PROJECT=my-sandbox python -m pytest tests/live -q

It makes a custom-mode VPC, a subnet and a firewall rule (no charge), checks the permission
preflight passed and a re-plan shows no change, and destroys them, even when a step failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = os.environ.get("PROVISION_LIVE_PROJECT", "")
PLAN = Path(__file__).parents[2] / "plans" / "network-basics.yaml"

pytestmark = pytest.mark.skipif(not PROJECT, reason="PROVISION_LIVE_PROJECT is not set")


def _provision(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PROVISION_EMULATOR"}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, str(PLAN), "--var", f"project={PROJECT}",
         "--ledger", str(tmp_path / "live.ledger.json")],
        env=env, capture_output=True, text=True, timeout=1800,
    )


def test_network_basics_applies_and_destroys_in_a_real_project(tmp_path: Path) -> None:
    try:
        applied = _provision(tmp_path, "apply", "--yes")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        again = _provision(tmp_path, "plan", "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        destroyed = _provision(tmp_path, "destroy", "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
