"""Secrets: values come from env vars, files or Secret Manager, only when asked for."""

from __future__ import annotations

import os

import pytest

from orchestrator.plan import SecretError, SecretRef, resolve_secret


def test_from_env(monkeypatch):
    monkeypatch.setenv("VPN_SECRET", "s3cr3t")
    assert resolve_secret(SecretRef("vpn", "env", "VPN_SECRET")) == "s3cr3t"


def test_missing_env_names_the_variable(monkeypatch):
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    with pytest.raises(SecretError, match="NOPE_SECRET is not set"):
        resolve_secret(SecretRef("vpn", "env", "NOPE_SECRET"))


def test_from_a_file_named_relative_to_the_plan(plan):
    (plan.tmp_path / "keys").mkdir()
    (plan.tmp_path / "keys" / "tls.key").write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    (plan.tmp_path / "psk").write_text("shared\n")
    loaded = plan.load(
        "name: t\nsecrets:\n  key: {file: keys/tls.key}\n  psk: {file: ./psk}\nsteps: []\n"
    )
    key = resolve_secret(loaded.secrets["key"])
    assert key == "-----BEGIN KEY-----\nabc\n-----END KEY-----"  # the trailing newline dropped
    assert resolve_secret(loaded.secrets["psk"]) == "shared"


def test_unreadable_file(tmp_path):
    with pytest.raises(SecretError, match="cannot read the file"):
        resolve_secret(SecretRef("k", "file", str(tmp_path / "absent")))


def test_binary_file_error_does_not_quote_its_bytes(tmp_path):
    path = tmp_path / "k"
    path.write_bytes(b"\xffsecret-bytes")
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("k", "file", str(path)))
    assert "xff" not in str(info.value) and "secret-bytes" not in str(info.value)


def test_from_secret_manager_through_the_given_accessor():
    calls = []

    def access(name: str) -> bytes:
        calls.append(name)
        return b"from-sm"

    ref = SecretRef("vpn", "secret_manager", "projects/p/secrets/s/versions/latest")
    assert resolve_secret(ref, access) == "from-sm"
    assert resolve_secret(ref, lambda name: "as-text") == "as-text"
    assert calls == ["projects/p/secrets/s/versions/latest"]


def test_secret_manager_without_an_accessor():
    ref = SecretRef("vpn", "secret_manager", "projects/p/secrets/s/versions/1")
    with pytest.raises(SecretError, match="Secret Manager"):
        resolve_secret(ref)


def test_a_fifo_or_a_device_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        with pytest.raises(SecretError, match="not a regular file"):
            resolve_secret(SecretRef("k", "file", str(path)))


def test_a_file_larger_than_any_secret_is_refused(tmp_path):
    path = tmp_path / "big"
    path.write_text("x" * 70000)
    with pytest.raises(SecretError, match="larger than 65536 bytes"):
        resolve_secret(SecretRef("k", "file", str(path)))
