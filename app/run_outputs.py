"""The files one headless run writes, each kept apart from the others.

Every output is written under a temporary name. One that fails on the way (its folder is
deleted, the disk fills up) is dropped with a one-line warning and the others go on; when
the run ends each finished output takes its final names on its own, and an output that fails
while doing so takes back the files it had already placed. A run that stops early (Ctrl-C,
a crash) removes every temporary file and never touches a final name. Folders the run made
and left empty are removed in either case.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2

from app.atomic import (
    describe_error,
    left_by_killed_writers,
    make_folders,
    place,
    remove_killed_partial,
    remove_left_by_killed,
    temp_name,
)

log = logging.getLogger(__name__)

# What writing an output can raise that is about the output, not about the program.
WRITE_ERRORS = (OSError, cv2.error)


@dataclass
class _Pending:
    output: str
    tmp: Path
    final: Path
    placed: bool = False
    replaced: bool = False  # placing it replaced an earlier file (with overwrite)


class RunOutputs:
    """Book-keeping for a run's outputs, by name ("video", "events", "snapshots", ...)."""

    def __init__(self, overwrite: bool):
        self.overwrite = overwrite
        self.failed: dict[str, str] = {}
        self._pending: list[_Pending] = []
        self._made: list[Path] = []
        self._folders: set[str] = set()  # outputs that are a folder of files, cleaned whole

    def temp(self, output: str, final: Path) -> Path:
        """The temporary path to write ``final`` under; it is placed by ``finish``.

        Raises:
            ValueError: when another file of this run already uses that temporary name.
        """
        entry = _Pending(output, temp_name(Path(final)), Path(final))
        if output not in self._folders and not any(e.output == output for e in self._pending):
            remove_killed_partial(entry.final)
        for other in self._pending:
            if other.tmp == entry.tmp and not other.placed:
                raise ValueError(
                    f"{final} and {other.final} would be written under one temporary name; "
                    "give the outputs names that differ sooner"
                )
        self._pending.append(entry)
        return entry.tmp

    def make_folder(self, output: str, folder: Path, *final_globs: str) -> bool:
        """Make ``output``'s folder if it is missing; False (output dropped) if that fails.

        Folders made here are removed again at the end of the run if they stay empty. The
        unfinished files of killed runs there whose final names match ``final_globs`` (the
        kinds of file the output writes: a snapshot per frame, an alerts log and its
        pictures) go, in one look at the folder.
        """
        if not self.live(output):
            return False
        try:
            self._made += make_folders(Path(folder))
        except OSError as exc:
            self.fail(output, exc)
            return False
        self._folders.add(output)
        remove_left_by_killed(left_by_killed_writers(Path(folder), *final_globs))
        return True

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
        """Drop ``output``: its temporary files go, and so do files it had already placed,
        except those that replaced an earlier file (that one is gone; the reason says so)."""
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # A write through an open file names none (a full disk): the file it was writing
            # is this output's newest one.
            files = [e.final for e in self._pending if e.output == output and not e.placed]
            if files:
                exc = OSError(exc.errno, exc.strerror, str(files[-1]))
        reason = describe_error(exc) if isinstance(exc, OSError) else str(exc).strip()
        self._remove(output)
        kept = self._take_back(output)
        if kept:
            reason += (
                f"; {len(kept)} of its files had already replaced earlier ones and are "
                f"kept: {', '.join(str(p) for p in kept[:3])}{', ...' if len(kept) > 3 else ''}"
            )
        self.failed[output] = reason
        others = {e.output for e in self._pending if e.output != output and self.live(e.output)}
        go_on = "; the other outputs go on" if others else ""
        log.warning("%s not written: %s%s", output, reason, go_on)

    def finish(self, output: str, check: Callable[[Path, Path], None] | None = None) -> int:
        """Give every finished file of ``output`` its final name; returns how many.

        ``check(tmp, final)`` may raise to say the file is not complete. If any file fails,
        the whole output is dropped (see ``fail``) and 0 is returned.
        """
        placed = 0
        for entry in self._pending:
            if entry.output != output or entry.placed or not self.live(output):
                continue
            if check is not None and not self.attempt(output, check, entry.tmp, entry.final):
                break
            if not self.attempt(output, self._place, entry):
                break
            placed += 1
        return placed if self.live(output) else 0

    def placed(self, output: str) -> set[Path]:
        """The final names that ``output``'s files have taken so far."""
        return {e.final for e in self._pending if e.output == output and e.placed}

    def _place(self, entry: _Pending) -> None:
        replaced = self.overwrite and os.path.lexists(entry.final)
        place(entry.tmp, entry.final, self.overwrite)
        entry.placed, entry.replaced = True, replaced

    def _take_back(self, output: str) -> list[Path]:
        """Remove the placed files of ``output`` that replaced nothing; return the others."""
        kept = []
        for entry in self._pending:
            if entry.output != output or not entry.placed:
                continue
            if entry.replaced:
                kept.append(entry.final)
                continue
            with contextlib.suppress(OSError):
                entry.final.unlink()
            entry.placed = False
        return kept

    def _remove(self, output: str | None = None) -> None:
        for entry in self._pending:
            if entry.placed or (output is not None and entry.output != output):
                continue
            with contextlib.suppress(OSError):
                entry.tmp.unlink()

    def discard(self) -> None:
        """Remove every temporary file not yet placed (a run that ended early)."""
        self._remove()

    def close(self) -> None:
        """Remove every temporary file not placed, then the folders made and left empty."""
        self._remove()
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds while it is empty
        self._made.clear()
