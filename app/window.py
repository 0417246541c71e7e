"""The MaskWatch window: live video with face boxes, a source picker, Start / Stop,
the teacher / student switch, a measured FPS counter and the face counts of the frame.

Capture and inference run in ``app.worker``; models load in ``app.model_loader``. Every
user-caused problem (no camera, bad file, bad weights) becomes a message in the window.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import (QApplication, QButtonGroup, QCheckBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QMainWindow, QPushButton, QRadioButton,
                               QSizePolicy, QVBoxLayout, QWidget)

from app.config import PipelineConfig
from app.device import resolve_device
from app.model_loader import LoadReport, ModelSwitcher, PipelineLoader
from app.pipeline import MODEL_NAMES, Pipeline
from app.source import describe
from app.source_picker import SourcePicker
from app.worker import CAPTURE_JOIN_S, END_FINISHED, FrameStats, PlaybackWorker

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "0"
WINDOW_SIZE = (1180, 700)
PANEL_WIDTH = 370
FPS_WINDOW = 10  # frames the FPS counter averages over
FPS_MAX_AGE_S = 3.0  # older display times are forgotten (the newest two always count)
CLOSE_WAIT_MS = int((CAPTURE_JOIN_S + 4) * 1000)
MODEL_TITLES = {"student": "Student (fast)", "teacher": "Teacher (accurate)"}
MESSAGE_STYLES = {
    "error": "background: #fbe3e3; color: #7a1010; border: 1px solid #d99; padding: 6px;",
    "info": "background: #e6eefb; color: #10306a; border: 1px solid #9ab; padding: 6px;",
}


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


class VideoView(QLabel):
    """Shows the newest annotated frame scaled to fit, keeping its aspect ratio."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image: QImage | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(480, 360)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: #111; color: #ccc; font-size: 15px;")
        self.show_placeholder("No video yet. Pick a source and press Start.")

    def show_placeholder(self, text: str) -> None:
        self._image = None
        self.clear()
        self.setText(text)

    def show_image(self, image: QImage) -> None:
        self._image = image
        self._rescale()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image is None:
            return
        pixmap = QPixmap.fromImage(self._image).scaled(
            self.size(), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(pixmap)


def big_label(text: str, colour: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet(f"font-size: 20px; font-weight: bold; color: {colour};")
    return label


class MainWindow(QMainWindow):
    """The app window; pass ``pipeline`` to skip loading (tests share one)."""

    frame_displayed = Signal(QImage, object)  # the annotated frame just shown, its FrameStats

    def __init__(self, config: PipelineConfig | None = None,
                 weights: dict[str, Path] | None = None, source: str | None = None,
                 pipeline: Pipeline | None = None, autostart: bool = True):
        super().__init__()
        self.config = config or PipelineConfig()
        self.pipeline: Pipeline | None = None
        self.last_stats: FrameStats | None = None
        self._worker: PlaybackWorker | None = None
        self._switcher: ModelSwitcher | None = None
        self._loader: PipelineLoader | None = None
        self._stopping = False
        self._closing = False
        self._loop = False
        self._start_when_ready = False
        self._fps = FpsMeter()
        self._shown_this_run = 0
        self._unavailable: dict[str, str] = {}

        self.setWindowTitle("MaskWatch")
        self.resize(*WINDOW_SIZE)
        self._build_ui()
        self.picker.set_spec(source if source is not None else DEFAULT_SOURCE)

        if pipeline is not None:
            self._on_loaded(LoadReport(pipeline))
        else:
            self._load_pipeline(weights or {})
        if autostart:
            self.start()

    # ---- layout --------------------------------------------------------------------------

    def _build_ui(self) -> None:
        self.video = VideoView()
        self.picker = SourcePicker()

        self.loop_check = QCheckBox("Loop the file")
        self.loop_check.toggled.connect(self._set_loop)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)

        model_box = QGroupBox("Classifier")
        model_layout = QVBoxLayout(model_box)
        self.model_buttons = QButtonGroup(self)
        self.model_radios: dict[str, QRadioButton] = {}
        for name in MODEL_NAMES:
            radio = QRadioButton(MODEL_TITLES[name])
            radio.toggled.connect(lambda on, name=name: on and self.switch_model(name))
            self.model_buttons.addButton(radio)
            self.model_radios[name] = radio
            model_layout.addWidget(radio)
            radio.setEnabled(False)
        self._show_model_choice(self.config.model)

        frame_box = QGroupBox("Current frame")
        form = QFormLayout(frame_box)
        self.mask_label = big_label("0", "#1e8c1e")
        self.no_mask_label = big_label("0", "#c81e1e")
        self.fps_label = big_label("-", "#222")
        self.model_label = QLabel("-")
        self.timing_label = QLabel("-")
        self.timing_label.setWordWrap(True)
        form.addRow("Mask:", self.mask_label)
        form.addRow("No mask:", self.no_mask_label)
        form.addRow("FPS:", self.fps_label)
        form.addRow("Model:", self.model_label)
        form.addRow("Timing:", self.timing_label)

        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()

        panel = QWidget()
        panel.setFixedWidth(PANEL_WIDTH)
        side = QVBoxLayout(panel)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.picker)
        side.addWidget(self.loop_check)
        side.addLayout(buttons)
        side.addWidget(model_box)
        side.addWidget(frame_box)
        side.addWidget(self.message_label)
        side.addStretch(1)

        central = QWidget()
        row = QHBoxLayout(central)
        row.addWidget(self.video, 1)
        row.addWidget(panel)
        self.setCentralWidget(central)

    # ---- messages ------------------------------------------------------------------------

    def show_message(self, text: str, kind: str = "error") -> None:
        """Show ``text`` in the side panel (``kind`` is error or info) and log it."""
        self.message_label.setText(text)
        self.message_label.setStyleSheet(MESSAGE_STYLES[kind])
        self.message_label.show()
        log.log(logging.WARNING if kind == "error" else logging.INFO, "%s", text)

    def clear_message(self) -> None:
        self.message_label.clear()
        self.message_label.hide()

    @property
    def message(self) -> str:
        return self.message_label.text() if self.message_label.isVisible() else ""

    # ---- models --------------------------------------------------------------------------

    def _load_pipeline(self, weights: dict[str, Path]) -> None:
        self.statusBar().showMessage("Loading the face detector and classifiers...")
        self.start_button.setEnabled(False)
        self._loader = PipelineLoader(self.config, weights)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self._on_load_failed)
        self._loader.start()

    def _on_loaded(self, report: LoadReport) -> None:
        self.pipeline = report.pipeline
        self._unavailable = dict(report.unavailable)
        self._show_model_choice(self.pipeline.active)
        for radio in self.model_radios.values():
            radio.setEnabled(True)
        for name, reason in self._unavailable.items():
            self.model_radios[name].setToolTip(f"could not be loaded: {reason}")
        self.model_label.setText(self.pipeline.active)
        self.start_button.setEnabled(self._worker is None)
        self.statusBar().showMessage(f"Ready: {self.pipeline.active} model on "
                                     f"{self.pipeline.device}")
        if self._unavailable:
            lines = [f"The {name} model could not be loaded: {reason}"
                     for name, reason in self._unavailable.items()]
            lines.append(f"Using the {self.pipeline.active} model.")
            self.show_message("\n".join(lines))
        if self._start_when_ready:
            self._start_when_ready = False
            self.start()

    def _on_load_failed(self, reason: str) -> None:
        self._start_when_ready = False
        self.statusBar().showMessage("No model could be loaded")
        self.show_message(f"The app cannot run without a model: {reason}")

    def _show_model_choice(self, name: str) -> None:
        radio = self.model_radios[name]
        radio.blockSignals(True)
        radio.setChecked(True)
        radio.blockSignals(False)

    def switch_model(self, name: str) -> None:
        """Make ``name`` the active classifier; playback keeps going and the next frame uses it."""
        if self.pipeline is None or self._switcher is not None or name == self.pipeline.active:
            return
        for radio in self.model_radios.values():
            radio.setEnabled(False)
        self.statusBar().showMessage(f"Switching to the {name} model...")
        self._switcher = ModelSwitcher(self.pipeline, name)
        self._switcher.switched.connect(self._on_switched)
        self._switcher.failed.connect(self._on_switch_failed)
        self._switcher.finished.connect(self._on_switcher_done)
        self._switcher.start()

    def _on_switched(self, name: str) -> None:
        self._unavailable.pop(name, None)
        self.model_radios[name].setToolTip("")
        self.model_label.setText(name)
        self.statusBar().showMessage(f"Now classifying with the {name} model")

    def _on_switch_failed(self, name: str, reason: str) -> None:
        active = self.pipeline.active
        self._unavailable[name] = reason
        self._show_model_choice(active)
        self.show_message(f"The {name} model could not be loaded: {reason}\n"
                          f"Still using the {active} model.")
        self.statusBar().showMessage(f"Still using the {active} model")

    def _on_switcher_done(self) -> None:
        self._switcher.wait()
        self._switcher.deleteLater()
        self._switcher = None
        for radio in self.model_radios.values():
            radio.setEnabled(True)
        self._show_model_choice(self.pipeline.active)

    # ---- playback ------------------------------------------------------------------------

    def _set_loop(self, on: bool) -> None:
        self._loop = on

    def start(self) -> None:
        """Play the source chosen in the picker (does nothing while already playing)."""
        if self._worker is not None or self._closing:
            return
        problem = self.picker.problem()
        if problem:
            self.show_message(problem)
            return
        if self.pipeline is None:
            self._start_when_ready = self._loader is not None and self._loader.isRunning()
            if self._start_when_ready:
                self.statusBar().showMessage("Playback starts once the models are loaded...")
            return
        spec = self.picker.spec()
        self.clear_message()
        self._fps.reset()
        self._shown_this_run = 0
        self._stopping = False
        self.fps_label.setText("-")
        self.video.show_placeholder(f"Opening {spec}...")
        self.statusBar().showMessage(f"Opening {spec}...")
        worker = PlaybackWorker(self.pipeline, spec, lambda: self._loop)
        worker.opened.connect(self._on_opened)
        worker.frame_ready.connect(self._on_frame)
        worker.failed.connect(self._on_failed)
        worker.ended.connect(self._on_ended)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        self._set_playing(True)
        worker.start()

    def stop(self) -> None:
        """Ask playback to stop; the threads are joined when the worker reports it finished."""
        if self._worker is None or self._stopping:
            return
        self._stopping = True
        self.stop_button.setEnabled(False)
        self.statusBar().showMessage("Stopping...")
        self._worker.stop()

    def _set_playing(self, playing: bool) -> None:
        self.start_button.setEnabled(not playing and self.pipeline is not None)
        self.stop_button.setEnabled(playing)
        self.picker.setEnabled(not playing)

    @property
    def is_playing(self) -> bool:
        return self._worker is not None

    @property
    def display_fps(self) -> float:
        return self._fps.fps

    def _on_opened(self, description: str) -> None:
        self.statusBar().showMessage(f"Playing {description}")
        self.video.setText("Waiting for the first frame...")

    def _on_frame(self, image: QImage, stats: FrameStats) -> None:
        if self._worker is None or self._stopping:
            return
        self.video.show_image(image)
        fps = self._fps.tick()
        self._shown_this_run += 1
        self.last_stats = stats
        self.mask_label.setText(str(stats.counts.get("mask", 0)))
        self.no_mask_label.setText(str(stats.counts.get("no_mask", 0)))
        self.fps_label.setText(f"{fps:.1f}" if fps > 0 else "-")
        self.model_label.setText(stats.model)
        detect = f"detect {stats.detect_ms:.0f} ms" if stats.detect_ms else "tracked"
        self.timing_label.setText(
            f"{detect}, classify {stats.classify_ms:.0f} ms, "
            f"latency {stats.latency_ms:.0f} ms; {stats.dropped} stale frames skipped so far")
        self._worker.frame_shown()
        self.frame_displayed.emit(image, stats)

    def _on_failed(self, reason: str) -> None:
        spec = self._worker.spec if self._worker else self.picker.spec()
        if describe(spec) == "camera":
            if reason.startswith("no camera"):
                problem = f"No camera found at index {spec}."
            else:
                problem = f"Camera {spec} cannot be used: {reason}."
            self.show_message(f"{problem} Choose a video file with \"Open file...\" or type "
                              "a URL, then press Start.")
            self.picker.offer_file()
        else:
            self.show_message(f"{reason[:1].upper()}{reason[1:]}. "
                              "Pick another source and press Start.")
        if self._shown_this_run == 0:
            self.video.show_placeholder("No video. Pick a source and press Start.")

    def _on_ended(self, reason: str) -> None:
        if reason == END_FINISHED:
            name = Path(self._worker.spec).name if self._worker else "the file"
            self.show_message(f"Finished: reached the end of {name}. Press Start to play "
                              "it again or pick another source.", "info")
        else:
            self.show_message(f"Playback ended: {reason}. Pick a source and press Start.")

    def _on_worker_finished(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()
        self._stopping = False
        self._set_playing(False)
        if not self._closing:
            self.statusBar().showMessage(self.message.split("\n")[0] or "Stopped")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop playback and wait for every background thread before the window goes."""
        self._closing = True
        self.hide()
        for thread in (self._worker, self._switcher, self._loader):
            if thread is None:
                continue
            if thread is self._worker:
                thread.stop()
            if not thread.wait(CLOSE_WAIT_MS):
                log.warning("a background thread did not stop within %d ms", CLOSE_WAIT_MS)
        super().closeEvent(event)


def run_window(config: PipelineConfig, weights: dict[str, Path],
               source: str | None = None) -> int:
    """Open the window and run the Qt event loop; returns the exit code.

    Playback starts at once, from ``source`` or camera 0; if that fails the window says why.
    """
    resolve_device(config.device)  # an impossible --device fails on the command line
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("MaskWatch")
    window = MainWindow(config, weights, source)
    window.show()

    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()  # lets Python see Ctrl+C while Qt's event loop runs
    wake.timeout.connect(lambda: None)
    wake.start(200)
    return app.exec()
