"""The CLI on a pseudo-terminal: what a user at a terminal sees, of a fixed size if asked."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path

# A hang is a failure, not a slow machine: generous bounds in real seconds.
HANG = 120
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(cwd: Path, args: list[str],
                  react: Callable[[bytes, subprocess.Popen[bytes]], bytes | None] | None = None,
                  rows: int | None = None, columns: int = 160) -> tuple[int, str]:
    """Run `provision ARGS` on a pseudo-terminal (`rows` x `columns`), calling
    `react(shown so far, process)` as output comes; what it returns is typed. Its exit status
    and what the terminal showed. Ctrl-C reaches a process as SIGINT: the terminal is not its
    controlling one, so typing it would not."""
    main, secondary = pty.openpty()
    if rows is not None:
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args], cwd=cwd,
        stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True,
        env={**os.environ, "TERM": "xterm", "COLUMNS": str(columns)},
    )
    os.close(secondary)
    shown = b""
    try:
        while True:
            ready, _, _ = select.select([main], [], [], HANG)
            assert ready, f"no output for {HANG} s:\n{shown.decode(errors='replace')[-2000:]}"
            try:
                chunk = os.read(main, 1 << 16)
            except OSError:  # the terminal's other end closed: the process is gone
                break
            if not chunk:
                break
            shown += chunk
            typed = react(shown, proc) if react is not None else None
            if typed:
                os.write(main, typed)
        return proc.wait(timeout=HANG), shown.decode(errors="replace")
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()


def plain(shown: str) -> str:
    """What the terminal showed, without its escape sequences (colours, cursor moves)."""
    return _ESCAPES.sub("", shown)
