"""Time as the engine sees it: simulated seconds, so deadlines and poll intervals keep their
meaning when the emulator runs Google's durations at a time scale (0.001 makes a 30-minute
Apigee instance take 1.8 s of wall time, and a 10 s poll interval 10 ms)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    scale: float = 1.0

    def now(self) -> float:
        return time.monotonic() / self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds * self.scale)
