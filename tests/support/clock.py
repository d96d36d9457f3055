"""A controllable clock for time-travel tests."""

from __future__ import annotations

import time


class Clock:
    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WallClock(Clock):
    """The real time, for clients of server processes that run on the real time."""

    def __call__(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        raise RuntimeError("the wall clock cannot be advanced")
