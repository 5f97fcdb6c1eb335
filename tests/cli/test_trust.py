"""Credentials go only to Google: a plan whose `endpoints:` names another address is refused
before any request, whatever the command; the user may name one on the command line
(--trust-endpoint). Checked with a listening socket that records what reaches it, and real
credentials: an authorized-user file holding an access token valid until 2099, so that
google-auth sends it without asking Google for one (which it would, at oauth2.googleapis.com,
whatever the file says)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ..engine.conftest import BASICS

TOKEN = "ya29.a-token-that-must-not-leave"


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with Google's 404; keeps each one's method, path and
    Authorization header (and in `headers`, all of its headers)."""

    seen: list[tuple[str, str, str | None]] = []
    headers: list[dict[str, str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        type(self).headers.append({k.lower(): v for k, v in self.headers.items()})
        data = json.dumps({"error": {"code": 404, "message": "not found",
                                     "status": "NOT_FOUND"}}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, str | None]], list[dict[str, str]]]]:
    seen: list[tuple[str, str, str | None]] = []
    headers: list[dict[str, str]] = []
    handler = type("Handler", (Recorder,), {"seen": seen, "headers": headers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen, headers
    finally:
        server.shutdown()
        server.server_close()


def _run(tmp_path: Path, origin: str, *args: str) -> subprocess.CompletedProcess[str]:
    credentials = tmp_path / "adc.json"
    credentials.write_text(json.dumps({
        "type": "authorized_user", "client_id": "c", "client_secret": "s",
        "refresh_token": "r", "token": TOKEN, "expiry": "2099-01-01T00:00:00Z",
    }))
    env = {k: v for k, v in os.environ.items() if k != "PROVISION_EMULATOR"}
    env |= {"GOOGLE_APPLICATION_CREDENTIALS": str(credentials), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def _plan(tmp_path: Path, origin: str) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASICS + f"endpoints:\n  compute: {origin}/compute\n")
    return plan


def _plan_trusting(tmp_path: Path, origin: str, *args: str) -> None:
    """`provision plan` of a plan whose compute endpoint is `origin`, trusted on the command
    line; it must succeed. (No permission check: it would ask Resource Manager, whose endpoint
    is Google's.)"""
    plan = _plan(tmp_path, origin)
    done = _run(tmp_path, origin, "plan", str(plan), "--trust-endpoint", origin,
                "--skip-permission-check", *args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["apply", "--yes"],
                                     ["destroy", "--yes"], ["refresh"]])
def test_a_plan_cannot_send_credentials_to_an_address_of_its_choosing(
    tmp_path: Path, recorder: tuple, command: list[str],
) -> None:
    origin, seen, _ = recorder
    plan = _plan(tmp_path, origin)
    done = _run(tmp_path, origin, command[0], str(plan), *command[1:])
    assert done.returncode == 2, done.stdout + done.stderr
    lines = BASICS.count("\n") + 2
    assert f"plan.yaml:{lines}" in done.stderr and "not a Google API endpoint" in done.stderr
    assert f"--trust-endpoint {origin}" in done.stderr
    assert seen == []


def test_an_endpoint_named_on_the_command_line_gets_the_credentials(
    tmp_path: Path, recorder: tuple,
) -> None:
    origin, seen, _ = recorder
    _plan_trusting(tmp_path, origin)
    reads = [(path, auth) for method, path, auth in seen if path.startswith("/compute")]
    assert reads and all(auth == f"Bearer {TOKEN}" for _, auth in reads)


def test_requests_name_the_tool_and_bill_the_quota_project_given(
    tmp_path: Path, recorder: tuple,
) -> None:
    from orchestrator.version import VERSION

    origin, _, sent = recorder
    _plan_trusting(tmp_path, origin, "--project", "billing-project")
    assert sent and all(h.get("x-goog-user-project") == "billing-project" for h in sent)
    assert all(f"provision/{VERSION}" in h["user-agent"].split() for h in sent)


def test_version_is_the_installed_package_s() -> None:
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", "orchestrator", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"provision {version('provision')}\n")


def test_a_deployment_sends_credentials_only_where_its_caller_trusts(
    tmp_path: Path, recorder: tuple, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clients check too: a plan validated with an endpoint trusted, then run by a
    caller who does not trust it, makes no client."""
    from orchestrator.api import Deployment
    from orchestrator.plan.loader import load_plan_text

    origin, seen, _ = recorder
    _run(tmp_path, origin, "--help")  # writes the credentials file
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "adc.json"))
    text = _plan(tmp_path, origin).read_text()
    model = load_plan_text(text, tmp_path / "plan.yaml", trust_endpoints=[origin])
    with pytest.raises(ValueError, match="not a Google API endpoint"):
        Deployment(model, ledger=tmp_path / "ledger.json")
    Deployment(model, ledger=tmp_path / "ledger.json", trust_endpoints=(origin,)).close()
    assert seen == []
