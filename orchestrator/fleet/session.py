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
from orchestrator.gcp.clock import LocalBackend, SimulatedClock, WallClock
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
        return self.emulator if isinstance(self.emulator, str) else getattr(
            self.emulator, "url", None)


@contextmanager
def open_session(emulator: Any, state_dir: Path) -> Iterator[Session]:
    """emulator: None (Google), "embedded" (one in-process emulator whose cloud persists under
    state_dir, as a Deployment's own would), an Emulator, or an emulator's URL."""
    from orchestrator.api import EMBEDDED

    embedded = None
    if emulator == EMBEDDED:
        from provision_emulator import Emulator

        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        embedded = emulator = Emulator(state_file=state_dir / "emulator-state.json").start()
    try:
        url = emulator if isinstance(emulator, str) else getattr(emulator, "url", None)
        if emulator is None:
            clock: Any = WallClock()
        elif isinstance(emulator, str):
            clock = clock_for_emulator(emulator)
        else:
            shared = emulator.clock
            clock = (SimulatedClock(LocalBackend(shared)) if shared.mode == "virtual"
                     else WallClock(shared.scale))
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
