"""Background playback for the window: capture and inference off the GUI thread.

A capture thread reads the source and keeps only the newest frame in a one-slot mailbox, so
a slow pipeline skips stale frames instead of falling behind. A ``PlaybackWorker`` (a QThread)
runs the tracking pipeline on that frame, draws the overlay and emits it as a QImage.
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

from app.alerts import UNMASKED
from app.capture import END_FINISHED, CapturedFrame, CaptureThread, LatestFrame
from app.config import DetectorConfig
from app.images import ColourWatch
from app.overlay import draw_faces
from app.pipeline import Face, Pipeline
from app.source import SourceError, SourceInfo, VideoSource, shown_name, shown_source
from app.tracking import TrackingPipeline

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often waiting threads look at the stop flag
CAPTURE_JOIN_S = 8.0  # a stream read may block for its 5 s timeout before it sees the flag


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
    time_s: float = 0.0  # media time: frame / fps for files, seconds since the first frame else
    # the frame before the overlay, kept only when a face is unmasked (alert snapshots)
    raw_frame: np.ndarray | None = field(default=None, repr=False)
    # set where the picture has just lost its colour (True) or got it back (False); None
    # on other frames (see app.images.ColourWatch and GREY_NOTE)
    grey_change: bool | None = None


def to_qimage(frame_bgr: np.ndarray) -> QImage:
    """A QImage that owns a copy of a BGR uint8 frame."""
    frame = np.ascontiguousarray(frame_bgr)
    height, width = frame.shape[:2]
    return QImage(frame.data, width, height, frame.strides[0], QImage.Format.Format_BGR888).copy()


def to_bgr(image: QImage) -> np.ndarray:
    """A BGR uint8 copy of a QImage (the inverse of ``to_qimage``)."""
    if image.format() != QImage.Format.Format_BGR888:
        image = image.convertToFormat(QImage.Format.Format_BGR888)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    data = np.frombuffer(image.constBits(), np.uint8, count=stride * height)
    return data.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def describe_source(info: SourceInfo) -> str:
    text = f"{info.kind} {shown_name(shown_source(info.spec))}, {info.width}x{info.height}"
    if info.kind == "file" or info.frame_count:  # a recording, played at its own rate
        text += f" at {info.fps:.0f} fps"
    return text


class PlaybackWorker(QThread):
    """Opens one source and plays it through the pipeline until it ends or ``stop`` is called.

    Faces are tracked between detections (``app.tracking``) with the pipeline's tracking
    settings; the tracks start afresh for each source. A looped file's next lap is one more
    frame to the tracker: a picture that jumps back is a cut and ends the tracks, a still or
    a short clip that starts as it ended keeps its faces (and their alert timers). A model
    switched on the shared pipeline is picked up on the next frame, and so are detector
    settings handed over with ``set_detector_config`` (this thread applies them, so the
    detector never changes in the middle of a detection).

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
        self.tracker = TrackingPipeline(pipeline)
        self.spec = spec
        self.should_loop = should_loop
        self._stop = threading.Event()
        self._shown = threading.Event()
        self._shown.set()
        self._detector_lock = threading.Lock()
        self._detector_config: DetectorConfig | None = None
        self._colour = ColourWatch()  # about once a second: a camera may turn to infrared

    def stop(self) -> None:
        """Ask the worker to finish; it ends after the frame it is working on."""
        self._stop.set()
        self._shown.set()

    def set_detector_config(self, config: DetectorConfig) -> None:
        """Use ``config`` from the next frame on; safe to call from any thread."""
        with self._detector_lock:
            self._detector_config = config

    def _apply_detector_config(self) -> None:
        with self._detector_lock:
            config, self._detector_config = self._detector_config, None
        if config is not None:
            self.pipeline.detector.configure(config)

    def frame_shown(self) -> None:
        """Called by the window once a frame is on screen; lets the next one through."""
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
        self._apply_detector_config()
        result = self.tracker.process(item.frame)
        raw = item.frame.copy() if any(f.label == UNMASKED for f in result.faces) else None
        grey_change = self._colour.update(item.frame, item.time_s)  # before boxes are drawn
        draw_faces(item.frame, result.faces)  # the window shows the FPS it measures itself
        image = to_qimage(item.frame)
        latency_ms = (time.perf_counter() - item.captured_at) * 1000
        stats = FrameStats(
            item.index,
            result.faces,
            result.model,
            result.detect_ms,
            result.classify_ms,
            latency_ms,
            dropped,
            result.counts(),
            item.time_s,
            raw,
            grey_change,
        )
        return image, stats
