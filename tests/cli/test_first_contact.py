"""The first run against Google, as a new user meets it: credentials missing, unreadable or
refused, Google's sign-in out of reach, an --emulator value that is not a URL. One line each,
with the fix, exit 2, no traceback and no "this is a bug"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..engine.conftest import BASICS


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS)
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PROVISION_EMULATOR", "GOOGLE_APPLICATION_CREDENTIALS")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", args[0], str(plan), *args[1:]], cwd=tmp_path,
        env=clean | env | {"COLUMNS": "300"}, capture_output=True, text=True, timeout=120,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "Traceback" not in done.stderr and "bug" not in done.stderr
    return done.stderr


@pytest.mark.parametrize("content", [None, '{"type": "nonsense"}', "not json"])
def test_a_credentials_file_that_is_missing_or_unreadable(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "credentials.json"
    if content is not None:
        path.write_text(content)
    said = _one_line(_run(tmp_path, "plan", GOOGLE_APPLICATION_CREDENTIALS=str(path)))
    assert f"GOOGLE_APPLICATION_CREDENTIALS={path}" in said
    assert "gcloud auth application-default login" in said and "--emulator" in said


@pytest.mark.parametrize("token", [{}, {"token": "ya29.old", "expiry": "2020-01-01T00:00:00Z"}],
                         ids=["no-token-yet", "expired"])
def test_credentials_google_cannot_be_asked_to_renew(tmp_path: Path, token: dict) -> None:
    """A login with no access token yet, or an expired one: signing in asks Google's token
    service, out of reach here (or, with a network, refusing this made-up login)."""
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "c",
                                "client_secret": "s", "refresh_token": "r", **token}))
    said = _one_line(_run(tmp_path, "plan", GOOGLE_APPLICATION_CREDENTIALS=str(path)))
    assert "sign in" in said or "renew your credentials" in said
    assert "--emulator" in said


def test_an_emulator_value_that_is_not_a_url(tmp_path: Path) -> None:
    said = _one_line(_run(tmp_path, "plan", "--emulator=localhost:8788"))
    assert "http://localhost:8788" in said


def test_an_api_endpoint_out_of_reach_at_first_contact(tmp_path: Path) -> None:
    """The permission preflight is the run's first request: an endpoint that does not answer
    is said so there, before anything was asked of Google."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    origin = f"https://127.0.0.1:{port}"
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "c",
                                "client_secret": "s", "refresh_token": "r",
                                "token": "ya29.t", "expiry": "2099-01-01T00:00:00Z"}))
    plan = tmp_path / "reach.yaml"
    plan.write_text(BASICS + f"endpoints:\n  cloudresourcemanager: {origin}\n")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PROVISION_EMULATOR", "GOOGLE_APPLICATION_CREDENTIALS")}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "plan", str(plan), "--trust-endpoint", origin],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env=clean | {"COLUMNS": "300", "GOOGLE_APPLICATION_CREDENTIALS": str(path)},
    )
    said = _one_line(done)
    assert "could not reach cloudresourcemanager" in said and "Nothing was changed" in said


def test_a_name_of_the_wrong_shape_is_said_with_its_step_and_exit_2(tmp_path: Path) -> None:
    """A step whose name resolves to a path where Google takes a name: Google's client refuses
    to send the request. The apply fails that step with the reason; a plan then says which
    step, exit 2, no traceback."""
    plan = tmp_path / "pki.yaml"
    plan.write_text(
        "name: pki\ndefaults: {project: pki-project, region: europe-west1}\nsteps:\n"
        "  - {id: pool, kind: privateca.ca_pool, name: internal, properties: {tier: DEVOPS}}\n"
        "  - id: root\n    kind: privateca.certificate_authority\n"
        "    name: ${pool.path}\n    pool: internal\n    properties: {type: SELF_SIGNED}\n")
    from provision_emulator import Emulator

    with Emulator() as emu:
        def provision(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "orchestrator", *args, str(plan),
                 f"--emulator={emu.url}"], cwd=tmp_path, capture_output=True, text=True,
                timeout=120)

        applied = provision("apply", "--yes")
        planned = provision("plan")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert "step root" in applied.stdout and "does not match the pattern" in applied.stdout
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "step root" in planned.stderr and "does not match the pattern" in planned.stderr
    for done in (applied, planned):
        assert "Traceback" not in done.stderr and "bug" not in done.stderr
