"""Whatever the ledger file holds, loading it gives a ledger or a LedgerError: never a crash."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.ledger import Ledger, LedgerCorrupt, LedgerError, LocalStore
from orchestrator.ledger.codec import canonical_json, encode

# The file is rewritten for each example, so sharing one temporary directory is safe.
examples = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def valid_file(make_ledger: Callable[..., Ledger]) -> bytes:
    return encode(make_ledger(2), 7)


@examples
@given(data=st.binary(max_size=2000))
def test_random_bytes_are_corrupt(tmp_path: Path, data: bytes) -> None:
    store = LocalStore(tmp_path / "l.json")
    store.path.write_bytes(data)
    try:
        store.load()
    except LedgerCorrupt:
        return
    raise AssertionError(f"loaded {data!r}")


@examples
@given(cut=st.integers(min_value=0))
def test_any_truncation_is_corrupt(tmp_path: Path, make_ledger, cut: int) -> None:
    data = valid_file(make_ledger)
    store = LocalStore(tmp_path / "l.json")
    store.path.write_bytes(data[: cut % (len(data) - 1)])
    try:
        store.load()
    except LedgerCorrupt:
        return
    raise AssertionError("a truncated ledger loaded")


@examples
@given(position=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
def test_a_changed_byte_is_corrupt_or_harmless(
    tmp_path: Path, make_ledger, position: int, byte: int
) -> None:
    data = bytearray(valid_file(make_ledger))
    original = Ledger.from_dict({k: v for k, v in json.loads(data).items() if k != "checksum"})
    data[position % len(data)] = byte
    store = LocalStore(tmp_path / "l.json")
    store.path.write_bytes(bytes(data))
    try:
        loaded = store.load()
    except LedgerCorrupt:
        return
    # Only a change that leaves the same content may load (an escape or exponent spelled
    # differently, a space added): then it is the very same ledger.
    assert loaded == original


@examples
@given(content=st.dictionaries(st.text(max_size=12), json_values, max_size=8), keep=st.booleans())
def test_json_with_a_valid_checksum_but_any_shape_is_refused_cleanly(
    tmp_path: Path, make_ledger, content: dict, keep: bool
) -> None:
    # Mixed into a real ledger's fields half of the time, so the checks deep inside are reached.
    if keep:
        content = {**make_ledger(1).to_dict(), **content}
    content.pop("checksum", None)
    checksum = "sha256:" + hashlib.sha256(canonical_json(content)).hexdigest()
    store = LocalStore(tmp_path / "l.json")
    store.path.write_text(json.dumps({"checksum": checksum, **content}))
    with contextlib.suppress(LedgerError):
        store.load()
