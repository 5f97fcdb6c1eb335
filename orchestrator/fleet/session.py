"""What a fleet runner shares among its instances: one cloud (Google, an emulator's URL, or one
embedded emulator for all of them), a clock on that cloud's time, and a storage client for a
gs:// fleet space."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.clock import WallClock
from orchestrator.gcp.clock import for_emulator as clock_for_emulator
from orchestrator.gcp.credentials import resolve_credentials


@dataclass
class Session:
    emulator: Any  # as orchestrator.load takes it
    clock: Any
    clients: Callable[[], ClientFactory]  # made on first use: a local fleet needs none

    def storage(self) -> Any:
        return self.clients().storage()

    @property
    def url(self) -> str | None:
        """The emulator's URL (an embedded one's too), or None for Google."""
        return _url_of(self.emulator)


def _url_of(emulator: Any) -> str | None:
    return emulator if isinstance(emulator, str) else getattr(emulator, "url", None)


@contextmanager
def open_session(emulator: Any, state_dir: Path) -> Iterator[Session]:
    """emulator: None (Google), "embedded" (one in-process emulator whose cloud persists under
    state_dir, as a Deployment's own would), an Emulator, or an emulator's URL."""
    from orchestrator.api import EMBEDDED, clock_in_process, start_embedded

    embedded = None
    if emulator == EMBEDDED:
        embedded = emulator = start_embedded(state_dir)
    try:
        url = _url_of(emulator)
        if emulator is None:
            clock: Any = WallClock()
        elif isinstance(emulator, str):
            clock = clock_for_emulator(emulator)
        else:
            clock = clock_in_process(emulator)

        @functools.cache
        def clients() -> ClientFactory:
            return ClientFactory(
                credentials=resolve_credentials(emulator=url is not None,
                                                clock_session=lambda: clock.header()),
                emulator_url=url,
            )

        try:
            yield Session(emulator, clock, clients)
        finally:
            clock.close()
    finally:
        if embedded is not None:
            embedded.stop()
