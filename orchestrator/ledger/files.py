"""Durable file replacement: a reader sees the old file or the new one, whole, and after a crash
(of the process or the machine) the file is one of the two, never missing or half written."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

PRIVATE = 0o600


def write_private(path: Path, data: bytes) -> Path:
    """Writes `data` durably to a new temporary file beside `path` (mode 0600) and returns it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    try:
        # The mode given to open() is reduced by the umask; the ledger must be 0600 regardless.
        os.fchmod(fd, PRIVATE)
        append(fd, data)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def open_append(path: Path) -> int:
    """A descriptor appending to `path` (mode 0600), created if need be, its name made durable."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        return os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.fchmod(fd, PRIVATE)
        # Appends fsynced to a file whose name is not yet on disk could vanish with the name.
        fsync_dir(path.parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append(fd: int, data: bytes) -> None:
    """Writes all of `data` at `fd` and returns once it is on disk."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def replace(path: Path, data: bytes, keep_old_as: Path | None = None) -> None:
    """Atomically replaces `path` with `data`; the version it replaces, if any, stays readable
    as `keep_old_as`."""
    tmp = write_private(path, data)
    try:
        if keep_old_as is not None:
            _keep(path, keep_old_as)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Makes the renames in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep(path: Path, keep: Path) -> None:
    # A hard link costs no copy and never leaves a moment without `path` (renaming it away
    # would: a crash there and the next run finds no ledger and starts an empty one).
    staged = keep.with_name(f".{keep.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        os.link(path, staged)
    except FileNotFoundError:
        return
    except OSError:
        # A file system without hard links: copy instead.
        shutil.copyfile(path, staged)
        os.chmod(staged, PRIVATE)
    try:
        os.replace(staged, keep)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
