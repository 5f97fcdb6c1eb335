"""Secrets: where a plan's secret values come from. Never the values themselves.

A plan names a secret by reference only (an environment variable, a file, a Secret Manager
version), so neither the plan file nor the model built from it holds the value; the engine calls
`resolve_secret` when it needs the value, and keeps it out of the ledger and events.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Source = Literal["env", "file", "secret_manager"]
SOURCES: tuple[Source, ...] = ("env", "file", "secret_manager")


@dataclass(frozen=True)
class SecretRef:
    """name: the plan's name for it. ref: the env var's name, the file's absolute path, or the
    Secret Manager version ("projects/p/secrets/s/versions/latest")."""

    name: str
    source: Source
    ref: str

    def __str__(self) -> str:
        return f"secret '{self.name}' ({self.source} {self.ref})"


class SecretError(Exception):
    """A secret whose value cannot be had. The message names the secret, never its value."""


# Secret Manager's own bound on a secret's payload: 64 KiB.
MAX_SECRET_BYTES = 65536


def _read_bounded(ref: SecretRef) -> str:
    """A secret file's text: a regular file of at most MAX_SECRET_BYTES. Opened without
    blocking, so that a FIFO nobody writes to, or a device, is refused rather than waited on
    or read without end."""
    fd = os.open(ref.ref, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SecretError(f"{ref}: not a regular file (a FIFO, a device or a directory); "
                              "give the file that holds the secret")
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(f"{ref}: larger than {MAX_SECRET_BYTES} bytes, the most a secret "
                          "holds; is it the right file?")
    return data.decode("utf-8")


def resolve_secret(
    ref: SecretRef,
    access_secret_version: Callable[[str], str | bytes] | None = None,
) -> str:
    """The secret's value.

    access_secret_version: given a Secret Manager version name, returns its payload; the gcp layer
    passes it so that this module imports no client library.
    """
    if ref.source == "env":
        value = os.environ.get(ref.ref)
        if value is None:
            raise SecretError(f"{ref}: environment variable {ref.ref} is not set")
        return value
    if ref.source == "file":
        try:
            value = _read_bounded(ref)
        except OSError as e:
            raise SecretError(f"{ref}: cannot read the file: {e.strerror}") from None
        except UnicodeDecodeError:
            # The decoder's own message quotes the offending bytes: part of the secret.
            raise SecretError(f"{ref}: the file is not UTF-8 text") from None
        # `echo secret > file` leaves a newline that is not part of the secret.
        return value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    if access_secret_version is None:
        raise SecretError(f"{ref}: reading Secret Manager needs Google credentials (none given)")
    payload = access_secret_version(ref.ref)
    if isinstance(payload, bytes):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"{ref}: the secret's payload is not UTF-8 text") from None
    return payload
