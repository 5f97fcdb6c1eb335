from __future__ import annotations

from collections.abc import Callable

import pytest

from orchestrator.ledger import (
    Ledger,
    LedgerError,
    LocalStore,
    fingerprint_matches,
    keyed_fingerprint,
)
from orchestrator.ledger.fingerprint import key_id

SECRET = "vpn-shared-secret-Zq81"


def test_the_fingerprint_names_its_key_and_hides_the_value() -> None:
    key = bytes(range(32))
    fingerprint = keyed_fingerprint(SECRET, key)
    prefix, kid, digest = fingerprint.split(":")
    assert (prefix, kid, len(digest)) == ("hmac-sha256", key_id(key), 64)
    assert SECRET not in fingerprint
    assert keyed_fingerprint(SECRET, key) == fingerprint
    assert keyed_fingerprint(SECRET + "!", key) != fingerprint
    assert keyed_fingerprint(SECRET, bytes(32)) != fingerprint


def test_a_rotated_secret_is_told_from_a_lost_key() -> None:
    key, other = bytes(range(32)), bytes(32)
    fingerprint = keyed_fingerprint(SECRET, key)
    assert fingerprint_matches(SECRET, fingerprint, key) is True
    assert fingerprint_matches("rotated", fingerprint, key) is False
    assert fingerprint_matches(SECRET, fingerprint, other) is None
    assert fingerprint_matches(SECRET, "sha256:abc", key) is None


def test_the_key_is_made_once_and_kept_outside_the_ledger(
    store: LocalStore, saved: Callable[[Ledger], Ledger], make_ledger: Callable[..., Ledger]
) -> None:
    key = store.fingerprint_key()
    assert len(key) == 32
    assert LocalStore(store.path).fingerprint_key() == key
    ledger = make_ledger(1)
    ledger.resources["subnet-0"].spec["sharedSecret"] = keyed_fingerprint(SECRET, key)
    saved(ledger)
    for path in (store.path, store.backup_path):
        if path.exists():
            text = path.read_text()
            assert SECRET not in text and key.hex() not in text


def test_a_damaged_key_is_reported(store: LocalStore) -> None:
    store.key_path.write_text("not hex")
    with pytest.raises(LedgerError, match=r"plan\.ledger\.json\.key is damaged"):
        store.fingerprint_key()
