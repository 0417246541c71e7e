"""Frame capture off the consumer's thread, keeping only the newest frame.

A capture thread reads the source and keeps the newest frame in a one-slot mailbox, so a
slow pipeline skips stale frames instead of falling behind. Used by the window's worker and
by the benchmark's live run; nothing here depends on Qt.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from app.source import SourceError, VideoSource, shown_source

log = logging.getLogger(__name__)

END_FINISHED = "finished"


@dataclass
class CapturedFrame:
    index: int
    captured_at: float  # time.perf_counter() when it was read
    frame: np.ndarray
    # Media time: frame / fps in a recording, counted on across the laps of a looped file
    # (each lap at its own file's rate); the clock since the first frame for a live source.
    time_s: float = 0.0


class LatestFrame:
    """A one-slot mailbox: ``put`` replaces a frame nobody has taken yet."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item: CapturedFrame | None = None
        self._closed = False
        self.end_reason: str | None = None
        self.dropped = 0

    def put(self, item: CapturedFrame) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def close(self, reason: str) -> None:
        """No more frames will come; ``reason`` says why (``END_FINISHED`` or a message)."""
        with self._cond:
            self._closed = True
            self.end_reason = reason
            self._cond.notify_all()

    def take(self, timeout: float) -> CapturedFrame | None:
        """The newest frame, or None if none arrived within ``timeout`` seconds."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    @property
    def drained(self) -> bool:
        """True once the source has ended and its last frame was taken."""
        with self._cond:
            return self._closed and self._item is None


class CaptureThread(threading.Thread):
    """Reads frames into a mailbox; recordings are paced at their own frame rate, live feeds
    are read as fast as they deliver.

    The thread owns the source and releases it when it ends.
    """

    def __init__(
        self,
        source: VideoSource,
        mailbox: LatestFrame,
        stop: threading.Event,
        should_loop: Callable[[], bool],
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        super().__init__(name="maskwatch-capture", daemon=True)
        self.source = source
        self.mailbox = mailbox
        self.stop = stop
        self.should_loop = should_loop
        self.transform = transform

    def run(self) -> None:
        reason = END_FINISHED
        try:
            reason = self._read_all()
        except SourceError as exc:
            reason = str(exc)
        except Exception as exc:  # an OpenCV backend error must still end playback cleanly
            log.exception("capture failed")
            reason = f"reading {self.source.spec} failed: {exc}"
        finally:
            self.source.close()
            self.mailbox.close(reason)

    def _read_all(self) -> str:
        recorded = self.source.recorded  # a file, or one served over the network
        period = 1.0 / self.source.info.fps if recorded else 0.0
        due = time.perf_counter()
        index = lap = 0
        lap_start_s = 0.0  # media time at which this lap began
        while not self.stop.is_set():
            frame = self.source.read()
            if frame is None:
                if not recorded:
                    shown = shown_source(self.source.spec)
                    return f"{self.source.kind} {shown} stopped delivering frames"
                note = self.source.cut_off_note() if lap == 0 else None
                if note:
                    log.warning("%s", note)
                if not (self.should_loop() and index > 0):
                    return note or END_FINISHED
                lap_start_s += self.source.frames_read / self.source.info.fps
                self.source.close()
                self.source = VideoSource(self.source.spec)
                period = 1.0 / self.source.info.fps  # the file may have been replaced
                lap += 1
                continue
            if self.transform is not None:
                frame = self.transform(frame)
            media_s = lap_start_s + self.source.time_s()
            self.mailbox.put(CapturedFrame(index, time.perf_counter(), frame, media_s))
            index += 1
            if period:
                due += period
                delay = due - time.perf_counter()
                if delay > 0:
                    self.stop.wait(delay)
                elif delay < -period:
                    due = time.perf_counter()  # reading itself is slow: do not try to catch up
        return "stopped"
