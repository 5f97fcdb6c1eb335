"""Secrets: where a plan's secret values come from. Never the values themselves.

A plan names a secret by reference only (an environment variable, a file, a Secret Manager
version), so neither the plan file nor the model built from it holds the value; the engine calls
`resolve_secret` when it needs the value, and keeps it out of the ledger and events.
"""

from __future__ import annotations

import os
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
            with open(ref.ref, encoding="utf-8") as fh:
                value = fh.read()
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
