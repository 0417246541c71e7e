"""The window's FPS counter: the rate at which annotated frames reach the screen, which is
what a user sees, not what the pipeline could do."""

from __future__ import annotations

import time
from collections import deque

FPS_WINDOW = 10  # frames the FPS counter averages over
FPS_MAX_AGE_S = 3.0  # older display times are forgotten (the newest two always count)


class FpsMeter:
    """Frames per second from the times frames were put on screen."""

    def __init__(self, size: int = FPS_WINDOW, max_age_s: float = FPS_MAX_AGE_S):
        self._times: deque[float] = deque(maxlen=size)
        self._max_age_s = max_age_s

    def reset(self) -> None:
        self._times.clear()

    def tick(self, now: float | None = None) -> float:
        """Record one displayed frame and return the current rate (0 until two frames)."""
        now = time.perf_counter() if now is None else now
        self._times.append(now)
        while len(self._times) > 2 and now - self._times[0] > self._max_age_s:
            self._times.popleft()
        return self.fps

    @property
    def fps(self) -> float:
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])
