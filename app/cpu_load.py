"""How busy other programs keep this machine's cores, read from /proc (Linux).

Speed figures taken beside another job read low, and nothing in them says why: the benchmark
and the soak run report this beside their figures.
"""

from __future__ import annotations

import os
import time

BUSY_CORES = 0.5  # other programs using more than this many cores make a figure unfair


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by the whole machine and by this process (all its threads);
    the machine's figure is nan where /proc/stat cannot be read."""
    own = os.times()
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return float("nan"), own.user + own.system
    idle = ticks[3] + ticks[4]  # idle and waiting for I/O
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), own.user + own.system


class OtherLoad:
    """The cores other programs kept busy, on average, since this object was made."""

    def __init__(self):
        self._start = time.perf_counter()
        self._machine, self._own = cpu_seconds()

    def cores(self) -> float:
        """Mean cores used by other programs so far (nan where /proc cannot be read)."""
        machine, own = cpu_seconds()
        elapsed = max(time.perf_counter() - self._start, 1e-3)
        return max(0.0, (machine - self._machine) - (own - self._own)) / elapsed
