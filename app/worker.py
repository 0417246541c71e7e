"""Background playback for the window: capture and inference off the GUI thread.

A capture thread reads the source and keeps only the newest frame in a one-slot mailbox, so
a slow pipeline skips stale frames instead of falling behind. A ``PlaybackWorker`` (a QThread)
runs the pipeline on that frame, draws the overlay and emits the annotated frame as a QImage.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from app.overlay import draw_faces
from app.pipeline import Face, Pipeline
from app.source import SourceError, SourceInfo, VideoSource

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often waiting threads look at the stop flag
CAPTURE_JOIN_S = 8.0  # a stream read may block for its 5 s timeout before it sees the flag
END_FINISHED = "finished"


@dataclass
class CapturedFrame:
    index: int
    captured_at: float  # time.perf_counter() when it was read
    frame: np.ndarray


@dataclass
class FrameStats:
    """What the window shows beside one annotated frame."""

    index: int
    faces: list[Face]
    model: str
    detect_ms: float
    classify_ms: float
    latency_ms: float  # from capture to the annotated frame being ready
    dropped: int  # frames the capture thread replaced before inference took them
    counts: dict[str, int] = field(default_factory=dict)


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
    """Reads frames into a mailbox; files are paced at their own frame rate.

    The thread owns the source and releases it when it ends.
    """

    def __init__(self, source: VideoSource, mailbox: LatestFrame, stop: threading.Event,
                 should_loop: Callable[[], bool]):
        super().__init__(name="maskwatch-capture", daemon=True)
        self.source = source
        self.mailbox = mailbox
        self.stop = stop
        self.should_loop = should_loop

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
        is_file = self.source.kind == "file"
        period = 1.0 / self.source.info.fps if is_file else 0.0
        due = time.perf_counter()
        index = 0
        while not self.stop.is_set():
            frame = self.source.read()
            if frame is None:
                if not is_file:
                    return f"{self.source.kind} {self.source.spec} stopped delivering frames"
                if not (self.should_loop() and index > 0):
                    return END_FINISHED
                self.source.close()
                self.source = VideoSource(self.source.spec)
                continue
            self.mailbox.put(CapturedFrame(index, time.perf_counter(), frame))
            index += 1
            if period:
                due += period
                delay = due - time.perf_counter()
                if delay > 0:
                    self.stop.wait(delay)
                elif delay < -period:
                    due = time.perf_counter()  # reading itself is slow: do not try to catch up
        return "stopped"


def to_qimage(frame_bgr: np.ndarray) -> QImage:
    """A QImage that owns a copy of a BGR uint8 frame."""
    frame = np.ascontiguousarray(frame_bgr)
    height, width = frame.shape[:2]
    return QImage(frame.data, width, height, frame.strides[0], QImage.Format.Format_BGR888).copy()


def describe_source(info: SourceInfo) -> str:
    text = f"{info.kind} {info.spec}, {info.width}x{info.height}"
    if info.kind == "file":
        text += f" at {info.fps:.0f} fps"
    return text


class PlaybackWorker(QThread):
    """Opens one source and plays it through the pipeline until it ends or ``stop`` is called.

    At most one annotated frame is in flight: the next is emitted only after the window calls
    ``frame_shown``, so frames never queue up in the GUI and latency stays flat.
    """

    opened = Signal(str)  # a description of the source
    frame_ready = Signal(QImage, object)  # annotated frame, FrameStats
    failed = Signal(str)  # the source could not be opened, or reading / inference broke
    ended = Signal(str)  # END_FINISHED at the end of a file, otherwise why frames stopped

    def __init__(self, pipeline: Pipeline, spec: str, should_loop: Callable[[], bool]):
        super().__init__()
        self.pipeline = pipeline
        self.spec = spec
        self.should_loop = should_loop
        self._stop = threading.Event()
        self._shown = threading.Event()
        self._shown.set()
        self._display_fps: float | None = None

    def stop(self) -> None:
        """Ask the worker to finish; it ends after the frame it is working on."""
        self._stop.set()
        self._shown.set()

    def frame_shown(self, display_fps: float | None) -> None:
        """Called by the window once a frame is on screen, with the FPS it measures."""
        self._display_fps = display_fps
        self._shown.set()

    def run(self) -> None:
        try:
            source = VideoSource(self.spec)
        except SourceError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:
            log.exception("opening %s failed", self.spec)
            self.failed.emit(f"{self.spec} could not be opened: {exc}")
            return
        self.opened.emit(describe_source(source.info))
        mailbox = LatestFrame()
        capture = CaptureThread(source, mailbox, self._stop, self.should_loop)
        capture.start()
        try:
            self._play(mailbox)
        finally:
            self._stop.set()
            capture.join(CAPTURE_JOIN_S)
            if capture.is_alive():
                log.warning("capture thread for %s did not stop in time", self.spec)

    def _play(self, mailbox: LatestFrame) -> None:
        while not self._stop.is_set():
            item = mailbox.take(POLL_S)
            if item is None:
                if mailbox.drained:
                    if not self._stop.is_set():
                        self.ended.emit(mailbox.end_reason or END_FINISHED)
                    return
                continue
            try:
                image, stats = self._annotate(item, mailbox.dropped)
            except Exception as exc:
                log.exception("processing frame %d failed", item.index)
                self.failed.emit(f"processing frame {item.index} failed: {exc}")
                return
            while not self._shown.wait(POLL_S):
                pass
            if self._stop.is_set():
                return
            self._shown.clear()
            self.frame_ready.emit(image, stats)

    def _annotate(self, item: CapturedFrame, dropped: int) -> tuple[QImage, FrameStats]:
        result = self.pipeline.process(item.frame)
        draw_faces(item.frame, result.faces, self._display_fps)
        image = to_qimage(item.frame)
        latency_ms = (time.perf_counter() - item.captured_at) * 1000
        stats = FrameStats(item.index, result.faces, result.model, result.detect_ms,
                           result.classify_ms, latency_ms, dropped, result.counts())
        return image, stats
