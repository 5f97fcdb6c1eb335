"""Keyed fingerprints of secret values: the ledger can tell that a secret changed without holding
anything that reveals it.

A plain hash of a VPN shared secret could be reversed by guessing weak secrets against it offline,
so the fingerprint is an HMAC under a random per-ledger key that is stored outside the ledger: a
copied, shared or leaked ledger file reveals nothing about the secrets. The fingerprint names its
key (a short key id), so a lost or replaced key shows up as "made with another key", which the
engine must not take for a rotated secret (that would replace a VPN tunnel for nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from orchestrator.ledger.errors import LedgerError

PREFIX = "hmac-sha256:"
KEY_BYTES = 32


def parse_key(text: str, location: str) -> bytes:
    """A stored key (hex digits), or LedgerError naming where it is damaged."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise LedgerError(
            f"fingerprint key {location} is damaged (expected {KEY_BYTES * 2} hex digits). "
            "Delete it to start a new key: secrets fingerprinted with the old one will then "
            "show as unknown until re-applied"
        )
    return key


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    # Derived with the key itself, so it says which key was used and nothing about it.
    return hmac.new(key, b"provision fingerprint key id", hashlib.sha256).hexdigest()[:8]


def keyed_fingerprint(value: str, key: bytes) -> str:
    """ "hmac-sha256:<key id>:<hex HMAC-SHA256 of value>"."""
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    return f"{PREFIX}{key_id(key)}:{digest}"


def fingerprint_matches(value: str, fingerprint: str, key: bytes) -> bool | None:
    """Whether `value` is the secret `fingerprint` was made from; None when it was made with
    another key (or is not a keyed fingerprint), so no answer is possible."""
    if not fingerprint.startswith(f"{PREFIX}{key_id(key)}:"):
        return None
    return hmac.compare_digest(fingerprint, keyed_fingerprint(value, key))
