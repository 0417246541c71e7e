"""The files one headless run writes, each kept apart from the others.

Every output is written under a temporary name. One that fails on the way (its folder is
deleted, the disk fills up) is dropped with a one-line warning and the others go on; when
the run ends each finished output takes its final name on its own. A run that stops early
(Ctrl-C, a crash) removes every temporary file and never touches a final name.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2

from app.atomic import describe_error, place, temp_name

log = logging.getLogger(__name__)

# What writing an output can raise that is about the output, not about the program.
WRITE_ERRORS = (OSError, cv2.error)


@dataclass
class _Pending:
    output: str
    tmp: Path
    final: Path
    placed: bool = False


class RunOutputs:
    """Book-keeping for a run's outputs, by name ("video", "events", "snapshots", ...)."""

    def __init__(self, overwrite: bool):
        self.overwrite = overwrite
        self.failed: dict[str, str] = {}
        self._pending: list[_Pending] = []

    def temp(self, output: str, final: Path) -> Path:
        """The temporary path to write ``final`` under; it is placed by ``finish``."""
        entry = _Pending(output, temp_name(Path(final)), Path(final))
        self._pending.append(entry)
        return entry.tmp

    def live(self, output: str) -> bool:
        """False once ``output`` has failed: callers stop writing it."""
        return output not in self.failed

    def attempt(self, output: str, action: Callable, *args) -> bool:
        """Run one write of ``output``; a failure drops that output and returns False."""
        if not self.live(output):
            return False
        try:
            action(*args)
        except WRITE_ERRORS as exc:
            self.fail(output, exc)
            return False
        return True

    def fail(self, output: str, exc: BaseException) -> None:
        reason = describe_error(exc) if isinstance(exc, OSError) else str(exc).strip()
        self.failed[output] = reason
        log.warning("%s not written: %s; the other outputs go on", output, reason)
        self._remove(output)

    def finish(self, output: str, check: Callable[[Path, Path], None] | None = None) -> int:
        """Give every finished file of ``output`` its final name; returns how many.

        ``check(tmp, final)`` may raise to say the file is not complete.
        """
        placed = 0
        for entry in self._pending:
            if entry.output != output or entry.placed or not self.live(output):
                continue
            if check is not None and not self.attempt(output, check, entry.tmp, entry.final):
                break
            if not self.attempt(output, place, entry.tmp, entry.final, self.overwrite):
                break
            entry.placed = True
            placed += 1
        return placed

    def _remove(self, output: str | None = None) -> None:
        for entry in self._pending:
            if entry.placed or (output is not None and entry.output != output):
                continue
            with contextlib.suppress(OSError):
                entry.tmp.unlink()

    def discard(self) -> None:
        """Remove every temporary file not yet placed (a run that ended early)."""
        self._remove()
