"""The layering holds: the emulator stands alone, Google's facts are shared, and the
orchestrator's data flows one way (the contracts in pyproject.toml, checked by import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_the_project_keeps_its_import_contracts() -> None:
    result = lint(ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_a_broken_contract_is_reported(tmp_path: Path) -> None:
    """The check sees the imports: kinds do import gcp, so forbidding it must fail."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["orchestrator"]\n\n'
        '[[tool.importlinter.contracts]]\nname = "kinds without gcp"\ntype = "forbidden"\n'
        'source_modules = ["orchestrator.kinds"]\nforbidden_modules = ["orchestrator.gcp"]\n'
    )
    result = lint(config)
    assert result.returncode == 1
    assert "kinds without gcp BROKEN" in result.stdout
