"""Hypothesis-generated bad plans through the CLI: a message and exit 2, never a traceback,
never a request to Google."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from orchestrator.cli import app
from provision_emulator import Emulator

from ..engine.conftest import BASICS

runner = CliRunner()

ODD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40
) | st.sampled_from([
    "'; DROP TABLE steps; --", "$(rm -rf /)", "${vars.nope}", "${", "}}{{", "\u202eevil",
    "a" * 5000, "../../etc/passwd", "\x00", "🙂", "名前", "-1e309", "0x7fffffffffffffff",
])
FIELDS = ["name: eng-vpc", "name: eng-subnet", "range: 10.10.0.0/24", "region: europe-west1",
          "project: eng-project", "ipCidrRange: ${vars.range}", "direction: INGRESS"]


def _mutated(field: str, value: str) -> str:
    key = field.split(":", 1)[0]
    return BASICS.replace(field, f"{key}: {value!r}" if value else f"{key}:")


PLANS = (
    st.text(max_size=300)
    | st.builds(_mutated, st.sampled_from(FIELDS), ODD)
    | st.builds(lambda n: BASICS.replace("ipCidrRange: ${vars.range}", f"ipCidrRange: {n}"),
                st.integers() | st.floats(allow_nan=False) | st.booleans())
    | st.builds(lambda junk: BASICS + junk, st.text(max_size=60))
)


def test_generated_bad_plans_exit_2_without_a_request(emulator: Emulator) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.yaml"

        @settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(PLANS)
        def check(text: str) -> None:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            emulator.reset()
            result = runner.invoke(app, ["plan", str(path), f"--emulator={emulator.url}"])
            assert "Traceback" not in result.output
            assert result.exception is None or isinstance(result.exception, SystemExit)
            if result.exit_code != 0:
                assert result.exit_code == 2, result.output
                assert emulator.requests() == [], text

        check()
