"""Secret values never reach the ledger, its backup, events, logs, errors or plan output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from provision_emulator import Emulator

PLANS = Path(__file__).parents[2] / "plans"
KEY = PLANS / "demo-tls" / "api.internal.example.com.key"


def _key_lines() -> list[str]:
    """The key's body, line by line: any one of them appearing anywhere is a leak."""
    return [ln for ln in KEY.read_text().splitlines() if ln and not ln.startswith("-----")]


def _with_own_certificate(tmp_path: Path) -> Path:
    """psc-cloud-run.yaml with the load balancer serving a certificate the plan brings (the
    demo one, from files), instead of one its CA issues: a plan that holds a private key."""
    text = (PLANS / "psc-cloud-run.yaml").read_text()
    text = text.replace("steps:\n", (
        "secrets:\n"
        f"  tls_cert: {{file: {KEY.with_suffix('.crt')}}}\n"
        f"  tls_key: {{file: {KEY}}}\n\n"
        "steps:\n"), 1)
    text = text.replace("  - id: https-proxy\n", (
        "  - id: own-cert\n"
        "    kind: compute.region_ssl_certificate\n"
        "    name: own-cert\n"
        "    project: ${vars.backend_project}\n"
        '    properties: {certificate: "${secrets.tls_cert}", privateKey: "${secrets.tls_key}"}\n'
        "  - id: https-proxy\n"), 1)
    served = 'sslCertificates: ["//certificatemanager.googleapis.com/${cert.path}"]'
    assert served in text
    plan = tmp_path / "psc-cloud-run.yaml"
    plan.write_text(text.replace(served, 'sslCertificates: ["${own-cert.selfLink}"]'))
    return plan


def test_a_full_cycle_leaves_the_tls_key_nowhere(tmp_path: Path) -> None:
    plan = _with_own_certificate(tmp_path)
    streams: list[str] = []
    with Emulator() as emu:
        env = dict(os.environ)
        for args in (["apply", str(plan), "--json"], ["plan", str(plan)],
                     ["apply", str(plan), "--yes"], ["outputs", str(plan), "--json"],
                     ["show", str(plan)], ["destroy", str(plan), "--json"]):
            emulator = [] if args[0] in ("outputs", "show") else [f"--emulator={emu.url}"]
            run = subprocess.run([sys.executable, "-m", "orchestrator", *args, *emulator],
                                 cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=300)
            assert run.returncode == 0, (args, run.stdout, run.stderr)
            streams += [run.stdout, run.stderr]
            if args[0] == "outputs":  # the ledger as it stands with everything applied
                applied = (tmp_path / ".provision" /
                           "psc-cloud-run.ledger.json").read_text()
        # The emulator (Google) did receive the key: the certificate needs it.
        sent = [r for r in emu.requests() if r["method"] == "compute.regionSslCertificates.insert"]
        assert sent
    files = [p for p in (tmp_path / ".provision").rglob("*") if p.is_file()
             and not p.name.startswith("emulator")]
    assert any(p.name.endswith(".ledger.json") for p in files)
    assert any(p.name.endswith(".bak") for p in files)
    texts = [*streams, applied, *(p.read_text(errors="replace") for p in files)]
    leaks = [line for line in _key_lines() for text in texts if line in text]
    assert leaks == []
    # What the ledger keeps instead: a keyed fingerprint, so a rotated key shows as a change.
    assert '"privateKey":"hmac-sha256:' in applied.replace(" ", "")


def test_a_secret_that_cannot_be_had_stops_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = tmp_path / "vpn-hub.yaml"
    plan.write_text((PLANS / "vpn-hub.yaml").read_text().replace(
        "vpn_shared_secret: {file: demo-vpn/shared-secret}",
        "vpn_shared_secret: {env: PROVISION_TEST_UNSET_SECRET}",
    ))
    env = {k: v for k, v in os.environ.items() if k != "PROVISION_TEST_UNSET_SECRET"}
    for command in (["plan"], ["apply", "--yes"]):
        run = subprocess.run(
            [sys.executable, "-m", "orchestrator", command[0], str(plan), *command[1:],
             f"--emulator={emulator.url}"],
            cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=120,
        )
        assert run.returncode == 2, (command, run.stdout, run.stderr)
        line = next(n for n, text in enumerate(plan.read_text().splitlines(), 1)
                    if "vpn_shared_secret:" in text)
        assert f"{plan}:{line}:" in run.stderr
        assert "environment variable PROVISION_TEST_UNSET_SECRET is not set" in run.stderr
        assert "Traceback" not in run.stderr
    assert emulator.requests() == []
    assert not (tmp_path / ".provision").exists()


def test_a_secret_google_quotes_back_in_an_error_is_written_nowhere(tmp_path: Path) -> None:
    """Google's 400s quote the value they refuse (the emulator's echo_field fault does so for
    the tunnels' sharedSecret): the ledger, its files, the events, the CLI's output and its
    exit carry the secret's name instead."""
    plan = PLANS / "vpn-hub.yaml"
    secret = (PLANS / "demo-vpn" / "shared-secret").read_text().strip()
    with Emulator() as emu:
        emu.set_faults(echo_field="sharedSecret", methods=["compute.vpnTunnels.insert"])
        runs = [subprocess.run(
            [sys.executable, "-m", "orchestrator", *args, str(plan), f"--emulator={emu.url}"],
            cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=300)
            for args in (["apply", "--json"], ["apply", "--yes"])]
        refused = [r for r in emu.requests() if r["method"] == "compute.vpnTunnels.insert"]
        assert refused and {r["status"] for r in refused} == {400}
    assert [run.returncode for run in runs] == [1, 1]
    shown = "".join(run.stdout + run.stderr for run in runs)
    assert "Invalid value for field 'resource.sharedSecret': '[secret vpn_shared_secret]'" in shown
    files = [p for p in (tmp_path / ".provision").rglob("*") if p.is_file()]
    for text in (shown, *(p.read_text(errors="replace") for p in files)):
        assert secret not in text
