"""The object checksums Cloud Storage reports: base64 of the big-endian CRC32C (Castagnoli) and
of the MD5 digest, as in `crc32c`, `md5Hash` and the `x-goog-hash` header."""

from __future__ import annotations

import base64
import hashlib

_POLYNOMIAL = 0x82F63B78  # CRC-32C, reflected


def _table() -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLYNOMIAL if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_TABLE = _table()


def crc32c(data: bytes) -> str:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return base64.b64encode((crc ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()
