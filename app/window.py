"""The MaskWatch window: live video with face boxes, a source picker, Start / Stop,
the teacher / student switch, a measured FPS counter and the face counts of the frame; a red
banner when a face stays unmasked, session statistics with a plot, snapshots and recording.

Capture and inference run in ``app.worker``; models load in ``app.model_loader``. Every
user-caused problem (no camera, bad file, bad weights) becomes a message in the window.
Settings the user changes are kept with QSettings (``app.preferences``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QScreen,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.alerts import Alert, AlertLog, AlertMonitor
from app.atomic import (
    atomic_path,
    describe_error,
    left_by_killed_writers,
    remove_left_by_killed,
)
from app.config import DetectorConfig, PipelineConfig, sensitivity_of, with_sensitivity
from app.fps_meter import FpsMeter
from app.images import GREY_NOTE, write_image
from app.model_loader import LoadReport, ModelSwitcher, PipelineLoader, other_model
from app.pipeline import MODEL_NAMES, Pipeline
from app.preferences import (
    APPLICATION,
    ORGANISATION,
    Preferences,
    user_settings,
)
from app.recording import DiskLowError, VideoRecorder, check_room, stamped_path
from app.settings_panel import DetectorSettings, SettingsPanel
from app.source import describe, plain_source, shown_source, source_title
from app.source_picker import SourcePicker
from app.stats import FaceStats
from app.stats_view import StatsPanel
from app.stop_signals import stop_signals_call
from app.video_view import VideoView
from app.window_flags import WindowFlags, apply_command_line
from app.wording import clock, faces_named, logged_as, naming, sentence, unwritable
from app.worker import CAPTURE_JOIN_S, END_FINISHED, FrameStats, PlaybackWorker, to_bgr

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "0"
WINDOW_SIZE = (1180, 700)  # the first size where the screen has no more room (768 px high)
# On a taller screen the window opens this high: every Live row in sight, with a two-line
# message below the tabs too (at 700 the Timing row is scrolled to).
ROOMY_HEIGHT = 800
TITLE_BAR_PX = 40  # left for the window's title bar, which the available height includes
PANEL_WIDTH = 370
CLOSE_WAIT_MS = int((CAPTURE_JOIN_S + 4) * 1000)
MODEL_TITLES = {"student": "Student (fast)", "teacher": "Teacher (accurate)"}
MESSAGE_STYLES = {
    "error": "background: #fbe3e3; color: #7a1010; border: 1px solid #d99; padding: 6px;",
    "info": "background: #e6eefb; color: #10306a; border: 1px solid #9ab; padding: 6px;",
}
BANNER_STYLE = (
    "background: #c81e1e; color: white; font-size: 20px; font-weight: bold; "
    "padding: 8px; border-radius: 4px;"
)
RECORDING_STYLE = "background: #c81e1e; color: white; font-weight: bold;"
BANNER_HOLD_MS = 4000  # the banner stays this long after the last unmasked frame of an alert
STATS_REFRESH_MS = 500
GREY_SENTENCE = GREY_NOTE[0].upper() + GREY_NOTE[1:] + "."  # the note as the panel shows it
SHORTCUTS = {
    "play": "Space",
    "snapshot": "S",
    "record": "R",
    "model": "T",
    "open": "Ctrl+O",
    "export": "Ctrl+E",
    "quit": "Ctrl+Q",
}


def big_label(text: str, colour: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet(f"font-size: 20px; font-weight: bold; color: {colour};")
    return label


def with_shortcut(text: str, name: str) -> str:
    return f"{text} ({SHORTCUTS[name]})"


class MainWindow(QMainWindow):
    """The app window; pass ``pipeline`` to skip loading (tests share one).

    ``settings`` is where the user's choices are kept between runs; without it the window
    remembers nothing and writes its files into a temporary folder. ``prefs`` overrides what
    ``settings`` hold (the command line does that); ``source``, when given, overrides both.
    The detector's sensitivity and minimum face size come from the preferences, unless
    ``config`` has thresholds that match no preset (given on the command line): those stay.
    """

    frame_displayed = Signal(QImage, object)  # the annotated frame just shown, its FrameStats
    alert_raised = Signal(object)  # an app.alerts.Alert

    def __init__(
        self,
        config: PipelineConfig | None = None,
        weights: dict[str, Path] | None = None,
        source: str | None = None,
        pipeline: Pipeline | None = None,
        autostart: bool = True,
        settings: QSettings | None = None,
        prefs: Preferences | None = None,
    ):
        super().__init__()
        self.config = config or PipelineConfig()
        self.settings = settings
        if prefs is None:
            prefs = (
                Preferences.load(settings)
                if settings is not None
                else Preferences.defaults(temporary=True)
            )
        self.prefs = prefs
        custom = sensitivity_of(self.config.detector) is None
        self.config = replace(
            self.config, detector=self._wanted_detector(None if custom else prefs.sensitivity)
        )
        self.alert_monitor = AlertMonitor(prefs.alert_delay_s)
        self.alert_log = AlertLog(prefs.alerts_dir)
        self.alerts: list[Alert] = []
        self.face_stats = FaceStats()
        self.recorder: VideoRecorder | None = None
        self._settings_warned = False
        self.last_image: QImage | None = None
        self._alert_log_failed = False
        self.pipeline: Pipeline | None = None
        self.last_stats: FrameStats | None = None
        self._worker: PlaybackWorker | None = None
        self._switcher: ModelSwitcher | None = None
        self._loader: PipelineLoader | None = None
        self._stopping = False
        self._closing = False
        self._loop = False
        self._start_when_ready = False
        self._start_after_stop = False  # a file chosen with Ctrl+O while playing
        self._fps = FpsMeter()
        self._shown_this_run = 0
        self._unavailable: dict[str, str] = {}
        self._failures: dict[str, str] = {}  # kind of file -> the message its failed save left
        self._notices: dict[str, str] = {}  # what holds all session: a model that failed...
        self._folder_files: dict[str, Path] = {}  # saved folders that are files, said
        self._detector_problem: str | None = None

        self.setWindowTitle("MaskWatch")
        self.resize(*first_size(QGuiApplication.primaryScreen()))
        self._build_ui(custom)
        self._build_actions()
        self._keep_space_for_playback()
        self.picker.set_spec(source if source is not None else prefs.source or DEFAULT_SOURCE)
        if self.picker.problem() and source is not None and not autostart:
            self.show_message(self.picker.problem())
        self.loop_check.setChecked(prefs.loop)
        if prefs.mended:  # unusable saved settings: their defaults go into the file now
            self.save_prefs()
        if prefs.ignored:
            self._add_notice(
                "ignored",
                "Saved settings that could not be used were reset to their defaults: "
                + "; ".join(text.removeprefix("ignoring saved ") for text in prefs.ignored)
                + ".",
            )
        self._say_folders_that_are_files(prefs.folders_that_are_files)
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_REFRESH_MS)
        self._stats_timer.timeout.connect(self.refresh_stats)
        self._banner_timer = QTimer(self)
        self._banner_timer.setSingleShot(True)
        self._banner_timer.timeout.connect(self.banner.hide)

        if pipeline is not None:
            self._on_loaded(LoadReport(pipeline))
        else:
            self._load_pipeline(weights or {})
        if autostart:
            self.start()

    # ---- layout --------------------------------------------------------------------------

    def _build_ui(self, custom_detector: bool = False) -> None:
        self.video = VideoView()
        self.picker = SourcePicker()

        self.loop_check = QCheckBox("Loop the file")
        self.loop_check.toggled.connect(self._set_loop)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.start_button.setToolTip(with_shortcut("Start playback", "play"))
        self.stop_button.setToolTip(with_shortcut("Stop playback", "play"))
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)

        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.setToolTip(with_shortcut("Save the frame as PNG", "snapshot"))
        self.snapshot_button.setEnabled(False)
        self.snapshot_button.clicked.connect(self.snapshot)
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.setEnabled(False)
        self.record_button.setToolTip(with_shortcut("Record the annotated video (.mp4)", "record"))
        self.record_button.toggled.connect(self._on_record_toggled)
        capture_buttons = QHBoxLayout()
        capture_buttons.addWidget(self.snapshot_button)
        capture_buttons.addWidget(self.record_button)

        model_box = QGroupBox("Classifier")
        model_box.setToolTip(with_shortcut("Teacher or student", "model"))
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

        self.detector_box = DetectorSettings(self.prefs, custom=custom_detector)
        self.detector_box.changed.connect(self._on_detector_changed)

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

        live = QWidget()
        live_layout = QVBoxLayout(live)
        live_layout.setContentsMargins(4, 4, 4, 4)
        live_layout.addWidget(model_box)
        live_layout.addWidget(self.detector_box)
        live_layout.addWidget(frame_box)
        live_layout.addStretch(1)
        self.settings_panel = SettingsPanel(self.prefs)
        self.settings_panel.changed.connect(self._on_setting_changed)
        self.tabs = QTabWidget()
        self.tabs.addTab(scrolling(live), "Live")
        self.tabs.addTab(scrolling(self.settings_panel), "Alerts && files")
        self.tabs.currentChanged.connect(self._focus_on_tab_bar)

        panel = QWidget()
        panel.setFixedWidth(PANEL_WIDTH)
        side = QVBoxLayout(panel)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.picker)
        side.addWidget(self.loop_check)
        side.addLayout(buttons)
        side.addLayout(capture_buttons)
        side.addWidget(self.tabs, 1)
        side.addWidget(self.message_label)

        self.banner = QLabel()
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setWordWrap(True)  # many faces named: the banner wraps, the window stays
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.hide()
        self.stats_panel = StatsPanel()
        self.stats_panel.export_requested.connect(self.export_csv)
        left = QVBoxLayout()
        left.addWidget(self.banner)
        left.addWidget(self.video, 1)
        left.addWidget(self.stats_panel)

        central = QWidget()
        row = QHBoxLayout(central)
        row.addLayout(left, 1)
        row.addWidget(panel)
        self.setCentralWidget(central)

    def _build_actions(self) -> None:
        """Keyboard shortcuts; each also works when its button has no focus."""
        slots = {
            "play": self._space,
            "snapshot": self.snapshot,
            "record": self.record_button.click,
            "model": self.toggle_model,
            "open": self.open_file,
            "export": self.export_csv,
            "quit": self.close,
        }
        self.actions: dict[str, QAction] = {}
        for name, slot in slots.items():
            action = QAction(name, self)
            action.setShortcut(QKeySequence(SHORTCUTS[name]))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _=False, slot=slot: slot())
            self.addAction(action)
            self.actions[name] = action
        self.picker.open_button.setToolTip(with_shortcut("Choose a video file", "open"))

    # ---- messages ------------------------------------------------------------------------

    def show_message(self, text: str, kind: str = "error") -> None:
        """Show ``text`` in the side panel (``kind`` is error or info) and log it."""
        self.message_label.setText(text)
        self.message_label.setStyleSheet(MESSAGE_STYLES[kind])
        self.message_label.show()
        level = logging.WARNING if kind == "error" else logging.INFO
        log.log(level, "%s", logged_as(text))

    def _say_failure(self, kind: str, text: str) -> None:
        """Show that saving a ``kind`` of file failed, until it next works (or another
        message takes its place)."""
        self.show_message(text)
        self._failures[kind] = text

    def _failure_mended(self, kind: str) -> None:
        """Saving a ``kind`` of file worked: its earlier failure no longer holds."""
        text = self._failures.pop(kind, None)
        if text is not None and self.message == text:
            self._show_notices()  # what still holds comes back in its place

    def _add_notice(self, key: str, text: str) -> None:
        """Show ``text`` as something that holds for the whole session (a model that could
        not be loaded, settings that cannot be kept): Start brings it back, where it clears
        the last run's messages."""
        self._notices[key] = text
        self.show_message("\n".join(self._notices.values()))

    def _drop_notice(self, key: str) -> None:
        """``key`` no longer holds; if the panel showed the notices (alone, or after a line
        such as the end of a clip), it shows the rest."""
        shown, message = "\n".join(self._notices.values()), self.message
        if self._notices.pop(key, None) is not None and message.endswith(shown):
            self._show_notices(lead=message[: len(message) - len(shown)].rstrip("\n"))

    def _show_notices(self, lead: str = "") -> None:
        """Show what holds all session, under ``lead`` when given (news such as the end of a
        clip, shown as news once no notice is left); all of it is logged already."""
        lines = ([lead] if lead else []) + list(self._notices.values())
        if not lines:
            self.clear_message()
            return
        self.message_label.setText("\n".join(lines))
        self.message_label.setStyleSheet(MESSAGE_STYLES["error" if self._notices else "info"])
        self.message_label.show()

    def _restore_notices(self) -> None:
        self._show_notices()
        # Settings reset at start-up are news once: they outlive the start that follows
        # (autostart would hide them at once), not every later one.
        self._notices.pop("ignored", None)
        self._notices.pop("files", None)
        self._folder_files = {}  # said: picking another folder later has nothing to drop

    def _say_folders_that_are_files(self, files: dict[str, Path]) -> None:
        """Say which saved folders are files now (kept, as the file may be moved away), until
        another folder is picked for them or, as other saved settings found unusable, until
        the start that follows; the log has it from loading them, but a user of the window
        reads the panel."""
        self._folder_files = files
        lines = []
        for name, folder in files.items():
            kind = name.removesuffix("_dir")
            other = (
                "export the statistics elsewhere (Export CSV...)"
                if name == "exports_dir"  # the export dialog's starting folder: no field
                else f"pick another {kind} folder in the Alerts & files tab"
            )
            lines.append(
                f"The saved {kind} folder {folder} is a file, not a folder; move the file away "
                f"or {other}."
            )
        if lines:
            self._add_notice("files", " ".join(lines))
        else:
            self._drop_notice("files")

    def _forget_folder_file(self, name: str) -> None:
        """Another folder was picked for ``name``: the file that was saved as it goes unsaid."""
        if name in self._folder_files:
            del self._folder_files[name]
            self._say_folders_that_are_files(self._folder_files)

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
        self._apply_detector()  # settings changed while loading, or a pipeline passed in
        # only now known: "default" weights fall back to stock when models/detector.pt is gone
        self.detector_box.set_stock(self.pipeline.detector.weights == "stock")
        self._unavailable = dict(report.unavailable)
        self._show_model_choice(self.pipeline.active)
        for radio in self.model_radios.values():
            radio.setEnabled(True)
        for name, reason in self._unavailable.items():
            self.model_radios[name].setToolTip(f"could not be loaded: {reason}")
        self.model_label.setText(self.pipeline.active)
        if self.prefs.model not in self._unavailable:
            self.prefs.model = self.pipeline.active  # a fallback is not the user's choice
        self.start_button.setEnabled(self._worker is None)
        self.statusBar().showMessage(
            f"Ready: {self.pipeline.active} model on {self.pipeline.device}"
            + self._unusual_detector()
        )
        self._detector_problem = report.detector_problem
        self._refresh_models_notice()
        if self._start_when_ready:
            self._start_when_ready = False
            self.start()

    def _unusual_detector(self) -> str:
        """Detector settings away from the defaults, to say beside "Ready": they are
        remembered, and a high sensitivity left from another day boxes many non-faces."""
        unusual = []
        if self.prefs.sensitivity != "standard":
            unusual.append(f"{self.prefs.sensitivity} sensitivity")
        if self.prefs.min_face_size != DetectorConfig.min_face_size:
            unusual.append(f"minimum face {self.prefs.min_face_size} px")
        return f"; detector at {' and '.join(unusual)}" if unusual else ""

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

    def _refresh_models_notice(self) -> None:
        """Say which weights could not be loaded and what is used instead, for as long as
        that holds: a model that loads later (its file mended) drops out of the notice."""
        lines = []
        if self._detector_problem:
            lines.append(
                f"The detector weights could not be loaded: {self._detector_problem}. "
                "Using MTCNN's stock weights."
            )
        if self._unavailable:
            lines += [
                f"The {name} model could not be loaded: {reason}"
                for name, reason in self._unavailable.items()
            ]
            lines.append(f"Using the {self.pipeline.active} model.")
        if not lines:
            self._drop_notice("models")
        elif self._notices.get("models") != "\n".join(lines):
            self._add_notice("models", "\n".join(lines))

    def _on_switched(self, name: str) -> None:
        self._unavailable.pop(name, None)
        self._refresh_models_notice()
        self.model_radios[name].setToolTip("")
        self.model_label.setText(name)
        self.prefs.model = name
        self.save_prefs()
        self.statusBar().showMessage(f"Now classifying with the {name} model")

    def _on_switch_failed(self, name: str, reason: str) -> None:
        active = self.pipeline.active
        self._unavailable[name] = reason
        self._show_model_choice(active)
        self._refresh_models_notice()
        self.statusBar().showMessage(f"Still using the {active} model")

    def toggle_model(self) -> None:
        """Switch between teacher and student (the T key)."""
        if self.pipeline is not None:
            self.switch_model(other_model(self.pipeline.active))

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
        self.prefs.loop = on
        self.save_prefs()

    def _keep_space_for_playback(self) -> None:
        """Buttons, boxes and lists take focus by Tab only, so a mouse click on one leaves
        Space to start and stop playback; the video holds the focus at first."""
        for widget in self.findChildren(QAbstractButton) + self.findChildren(QComboBox):
            widget.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.video.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.video.setFocus()

    def _focus_on_tab_bar(self) -> None:
        """Ctrl+Tab hands the focus to the tab bar, not to the first control of the page
        (where Space would open a list): Space still plays, and Tab goes into the page."""
        page = self.tabs.currentWidget()
        focused = QApplication.focusWidget()
        if focused is not None and page.isAncestorOf(focused):
            self.tabs.tabBar().setFocus(Qt.FocusReason.TabFocusReason)

    def _space(self) -> None:
        """Space ticks a focused check box, presses a focused button or opens a focused list,
        as it would without the shortcut (so the keyboard alone can reach them), and does
        nothing in a number box; elsewhere it starts or stops playback."""
        focused = QApplication.focusWidget()
        own = (self.start_button, self.stop_button)
        if isinstance(focused, QAbstractButton) and focused not in own and focused.isEnabled():
            focused.click()
            return
        if isinstance(focused, QComboBox):
            focused.showPopup()  # what Space does to a focused drop-down list
            return
        if isinstance(focused, QAbstractSpinBox):
            return  # a number being typed: Space means nothing there, least of all "stop"
        self.toggle_playback()

    def toggle_playback(self) -> None:
        """Start when stopped, stop when playing (the Space key)."""
        if self.is_playing:
            self.stop()
        elif self.start_button.isEnabled():
            self.start()

    def open_file(self) -> None:
        """The file dialog of the source picker (Ctrl+O). While a source plays, the picker is
        locked, so a file chosen here stops it and plays the file instead."""
        if self.picker.isEnabled():
            self.picker.open_file_dialog()
            return
        if self._worker is None or self._closing:
            return
        path = self.picker.choose_file(self)
        if path and self._worker is not None and not self._closing:
            self.picker.use_file(path)
            self._start_after_stop = True
            self.stop()
        elif path and not self._closing:  # playback ended while the dialog was open
            self.picker.use_file(path)
            self.start()

    def start(self) -> None:
        """Play the source chosen in the picker (does nothing while already playing)."""
        if self._worker is not None or self._closing:
            return
        problem = self.picker.problem()
        if problem:
            self.show_message(problem)
            self.statusBar().showMessage(problem)  # not the last run's news beneath it
            return
        if self.pipeline is None:
            self._start_when_ready = self._loader is not None and self._loader.isRunning()
            if self._start_when_ready:
                self.statusBar().showMessage("Playback starts once the models are loaded...")
            return
        spec = self.picker.spec()
        self._remember_source()
        self._restore_notices()
        self._alert_log_failed = False  # the message is gone: a failing log says so again
        self._fps.reset()
        self._shown_this_run = 0
        self.face_stats = FaceStats()
        self.alert_monitor.reset()
        self.refresh_stats()
        self._stopping = False
        self.fps_label.setText("-")
        self.video.show_placeholder(f"Opening {shown_source(spec)}...")
        self.statusBar().showMessage(f"Opening {shown_source(spec)}...")
        self._apply_detector()
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
        if self.stop_button.hasFocus():  # keep a keyboard user's focus near, not on the tabs
            self.video.setFocus()
        self.stop_button.setEnabled(False)
        self.statusBar().showMessage("Stopping...")
        self._worker.stop()

    def _set_playing(self, playing: bool) -> None:
        # A keyboard user on Start or Stop stays by the playback buttons when the one they
        # pressed is disabled, instead of Qt sending the focus on to the next control.
        on_button = QApplication.focusWidget() in (self.start_button, self.stop_button)
        self.start_button.setEnabled(not playing and self.pipeline is not None)
        self.stop_button.setEnabled(playing)
        if on_button:
            nearby = self.stop_button if playing else self.start_button
            (nearby if nearby.isEnabled() else self.video).setFocus()
        self.picker.setEnabled(not playing)
        self.record_button.setEnabled(playing)
        if not playing:
            self.record_button.setChecked(False)  # finishes a recording
            self._stats_timer.stop()
            self.refresh_stats()
        else:
            self._stats_timer.start()

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
        if stats.grey_change is True:  # the picture has just lost its colour
            self._say_grey()
        elif stats.grey_change is False:
            self._unsay_grey()
        self.last_stats = stats
        self.last_image = image
        self.snapshot_button.setEnabled(True)
        self._count_and_alert(stats)
        if self.recorder is not None:
            self._record_frame(image, stats.time_s)
        self.mask_label.setText(str(stats.counts.get("mask", 0)))
        self.no_mask_label.setText(str(stats.counts.get("no_mask", 0)))
        self.fps_label.setText(f"{fps:.1f}" if fps > 0 else "-")
        self.model_label.setText(stats.model)
        detect = f"detect {stats.detect_ms:.0f} ms" if stats.detect_ms else "tracked"
        self.timing_label.setText(
            f"{detect}, classify {stats.classify_ms:.0f} ms, "
            f"latency {stats.latency_ms:.0f} ms; {stats.dropped} stale frames skipped so far"
        )
        self._worker.frame_shown()
        self.frame_displayed.emit(image, stats)

    def _say_grey(self) -> None:
        """The picture has lost its colour: said beside whatever message stands, until the
        colour comes back."""
        if self.message:  # a standing message keeps its colour
            self.show_message(f"{self.message}\n{GREY_SENTENCE}")
        else:
            self.show_message(GREY_SENTENCE, kind="info")

    def _unsay_grey(self) -> None:
        """The picture has colour again: the grey note goes, the rest of the message stays."""
        lines = self.message.split("\n")
        if GREY_SENTENCE not in lines:
            return
        rest = "\n".join(line for line in lines if line != GREY_SENTENCE)
        if rest:
            self.message_label.setText(rest)  # logged already, and keeps its colour
        else:
            self.clear_message()
        log.info("the picture has colour again")

    def _on_failed(self, reason: str) -> None:
        if self._stopping:  # the user pressed Stop while the source was still opening
            self.video.show_placeholder("Stopped. Pick a source and press Start.")
            return
        spec = self._worker.spec if self._worker else self.picker.spec()
        if describe(spec) == "camera":
            if reason.startswith("no camera"):
                problem = f"No camera found at index {spec}."
            else:
                problem = f"Camera {spec} cannot be used: {reason}."
            self.show_message(
                f'{problem} Choose a video file with "Open file..." or type '
                "a URL, then press Start."
            )
            self.picker.offer_file()
        else:
            self.show_message(f"{sentence(reason)}. Pick another source and press Start.")
        if self._shown_this_run == 0:
            self.video.show_placeholder("No video. Pick a source and press Start.")

    def _on_ended(self, reason: str) -> None:
        if reason == END_FINISHED:
            name = source_title(self._worker.spec) if self._worker else "the file"
            finished = (
                f"Finished: reached the end of {name}. Press Start to play "
                "it again or pick another source."
            )
            self.show_message(finished, "info")
            self._show_notices(lead=finished)  # what holds all session stays in sight
        else:
            self.show_message(
                f"Playback ended: {reason}. Press Start to retry, or pick another source."
            )

    def _on_worker_finished(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()
        self._apply_detector()  # a change the worker had no frame left to pick up
        self._stopping = False
        recorded = self.recorder is not None
        self._set_playing(False)
        if not self._closing and not recorded:
            self.statusBar().showMessage(self.message.split("\n")[0] or "Stopped")
        if self._start_after_stop and not self._closing:  # a file chosen with Ctrl+O
            self._start_after_stop = False
            self.start()

    # ---- alerts and statistics -----------------------------------------------------------

    def _count_and_alert(self, stats: FrameStats) -> None:
        self.face_stats.add(stats.time_s, stats.faces)
        raised = self.alert_monitor.update(stats.time_s, stats.faces, stats.raw_frame)
        for alert in raised:
            self._raise_alert(alert)
        if raised:
            self._show_banner(raised)
        elif self.alert_monitor.alerting and self.banner.isVisible():
            self._banner_timer.start(BANNER_HOLD_MS)  # still unmasked: keep the banner up

    def _show_banner(self, raised: list[Alert]) -> None:
        """Name every face that is unmasked past the delay now, not only the newest alert's
        (two faces often pass it in the same frame); the status bar names the new ones."""
        delay = f"{self.alert_monitor.delay_s:g}"
        alerting = self.alert_monitor.alerting  # the raised ones among them
        at = clock(raised[-1].time_s)
        if len(alerting) == 1:
            text = f"Unmasked face for {delay} s (face {alerting[0]}, at {at})"
        else:
            text = (
                f"{len(alerting)} faces unmasked for {delay} s or more "
                f"({faces_named(alerting)}, the last at {at})"
            )
        self.banner.setText(text)
        self.banner.show()
        self._banner_timer.start(BANNER_HOLD_MS)
        wall = raised[-1].wall_time.strftime("%H:%M:%S")
        self.statusBar().showMessage(
            f"Alert at {wall}: {faces_named([a.track_id for a in raised])} unmasked for {delay} s"
        )

    def _raise_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
        if self.prefs.alert_sound:
            QApplication.beep()
        try:
            self.alert_log.append(alert)
        except OSError as exc:
            folder = self.alert_log.folder
            where = f"not saved in {folder}"
            if not self._alert_log_failed:  # say it once a run, not for every alert
                self._alert_log_failed = True
                blocked = unwritable(folder, "alerts")
                self._say_failure(
                    "alerts",
                    f"Alerts cannot be saved: {blocked}."
                    if blocked
                    else f"Alerts cannot be saved{naming(folder, ' in', exc)}. "
                    "Choose another alerts folder.",
                )
        else:
            where = f"logged in {self.alert_log.path}"
            self._alert_log_failed = False
            self._failure_mended("alerts")
        wall = alert.wall_time.strftime("%H:%M:%S")
        count = len(self.alerts)
        self.settings_panel.alert_status.setText(
            f"{count} alert{'s' if count != 1 else ''}, the last at {wall}; {where}"
        )
        self.alert_raised.emit(alert)

    def refresh_stats(self) -> None:
        self.stats_panel.refresh(self.face_stats)

    def export_csv(self, path: Path | None = None) -> Path | None:
        """Save the session's per-second statistics as CSV; asks for a file without ``path``."""
        if not self.face_stats.frames:
            self.show_message(
                "There are no statistics to export yet: they are counted while a source plays.",
                "info",
            )
            return None
        if path is None:
            suggested = self.prefs.exports_dir / time.strftime("maskwatch-stats-%Y%m%d-%H%M.csv")
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Export statistics", str(suggested), "CSV files (*.csv);;All files (*)"
            )
            if not chosen:
                return None
            path = Path(chosen)
        if self._is_source_file(path):
            self._say_failure(
                "stats",
                f"{path} is the video being watched; save the statistics under another name.",
            )
            return None
        try:
            self.face_stats.write_csv(path, overwrite=True)  # the dialog asked already
        except OSError as exc:
            self._say_failure(
                "stats", f"The statistics could not be saved as {path}: {describe_error(exc)}"
            )
            return None
        self.prefs.exports_dir = path.parent
        self._forget_folder_file("exports_dir")
        self.save_prefs()
        self._failure_mended("stats")
        self.statusBar().showMessage(f"Statistics saved to {path}")
        return path

    def _is_source_file(self, path: Path) -> bool:
        """Whether ``path`` is the file picked as the source (by any of its names)."""
        spec = plain_source(self.picker.spec())
        if describe(spec) != "file":
            return False
        try:
            return os.path.samefile(path, os.path.expanduser(spec))
        except (OSError, ValueError):  # either one missing: they cannot be one file
            return False

    # ---- snapshots and recording ---------------------------------------------------------

    def snapshot(self) -> Path | None:
        """Save the annotated frame on screen as PNG in the snapshots folder (the S key)."""
        if self.last_image is None:
            self.statusBar().showMessage("No frame to save yet")
            return None
        folder = self.prefs.snapshots_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = stamped_path(folder, "maskwatch", ".png")
            with atomic_path(path) as tmp:
                write_image(tmp, to_bgr(self.last_image))
        except OSError as exc:
            blocked = unwritable(folder, "snapshots")
            self._say_failure(
                "snapshot",
                f"The snapshot could not be saved: {blocked}."
                if blocked
                else f"The snapshot could not be saved{naming(folder, ' in', exc)}. "
                "Pick another snapshots folder in the Alerts & files tab.",
            )
            return None
        self._failure_mended("snapshot")
        self.statusBar().showMessage(f"Snapshot saved to {path}")
        return path

    def _on_record_toggled(self, on: bool) -> None:
        if on:
            self._start_recording()
        else:
            self._stop_recording()

    def _start_recording(self) -> None:
        if self.recorder is not None:
            return
        folder = self.prefs.recordings_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._say_failure(
                "recording",
                f"Cannot record{naming(folder, ' into', exc)}. "
                "Pick another recordings folder in the Alerts & files tab.",
            )
            self.record_button.setChecked(False)
            return
        blocked = unwritable(folder, "recordings")  # before free space: /sys "has 0 MB free"
        if blocked:
            self._say_failure("recording", f"Cannot record: {blocked}.")
            self.record_button.setChecked(False)
            return
        # no player opens the file of a recording whose window was killed outright
        remove_left_by_killed(left_by_killed_writers(folder, "maskwatch-*.mp4"), "recording")
        try:
            check_room(folder)
        except DiskLowError as exc:
            self._say_failure(
                "recording",
                f"Cannot record: {exc.strerror}. "
                "Free some space or pick another recordings folder in the Alerts & files tab.",
            )
            self.record_button.setChecked(False)
            return
        self.recorder = VideoRecorder(stamped_path(folder, "maskwatch", ".mp4"))
        self.record_button.setText("Stop recording")
        self.record_button.setStyleSheet(RECORDING_STYLE)
        self.statusBar().showMessage(f"Recording to {self.recorder.path}")

    def _record_frame(self, image: QImage, time_s: float) -> None:
        try:
            self.recorder.write(to_bgr(image), time_s)
        except DiskLowError as exc:  # stopped in time: what was recorded is kept
            recorder, self.recorder = self.recorder, None
            self._finish_recording(recorder, low_disk=exc)
            self.record_button.setChecked(False)  # the button only: the recording is done
        except OSError as exc:
            self.recorder.abort()
            self.recorder = None
            self._say_failure(
                "recording", f"Recording stopped, nothing was kept: {describe_error(exc)}"
            )
            self.record_button.setChecked(False)
            self.statusBar().showMessage("Recording stopped: it could not be written")

    def _stop_recording(self) -> None:
        self.record_button.setText("Record")
        self.record_button.setStyleSheet("")
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            self._finish_recording(recorder)

    def _finish_recording(
        self, recorder: VideoRecorder, low_disk: DiskLowError | None = None
    ) -> None:
        """Save what ``recorder`` holds and say how it went; ``low_disk`` is why it stopped
        when the disk, not the user, stopped it, and the message leads with that."""
        lead = f"Recording stopped for low disk: {low_disk.strerror}. " if low_disk else ""
        try:
            path = recorder.stop()
        except OSError as exc:
            recorder.abort()
            self._say_failure(
                "recording", f"{lead}The recording could not be saved: {describe_error(exc)}"
            )
            self.statusBar().showMessage("The recording could not be saved")
            return
        if low_disk is not None:
            kept = f"What was recorded is in {path}." if path else "Nothing was recorded."
            self._say_failure("recording", lead + kept)
            self.statusBar().showMessage("Recording stopped: the disk is nearly full")
        elif path is None:
            self.statusBar().showMessage("Nothing was recorded")
        else:
            self._failure_mended("recording")
            self.statusBar().showMessage(f"Recording saved to {path}")

    # ---- settings ------------------------------------------------------------------------

    def _on_setting_changed(self, name: str) -> None:
        self.settings_panel.apply_to(self.prefs)
        self._forget_folder_file(name)
        if name == "alert_delay_s":
            self.alert_monitor.delay_s = self.prefs.alert_delay_s
        elif name == "alerts_dir":
            self.alert_log = AlertLog(self.prefs.alerts_dir)
            self._alert_log_failed = False
            self._failure_mended("alerts")  # it named the old folder; the next alert tells
        self.save_prefs()

    def _wanted_detector(self, sensitivity: str | None) -> DetectorConfig:
        """The configured detector with the preferred minimum face size and close-up pass
        and, unless None, the thresholds of preset ``sensitivity``."""
        detector = replace(
            self.config.detector,
            min_face_size=self.prefs.min_face_size,
            near_face=self.prefs.near_face_size if self.prefs.near_faces else 0,
        )
        return detector if sensitivity is None else with_sensitivity(detector, sensitivity)

    def _on_detector_changed(self, _name: str) -> None:
        self.detector_box.apply_to(self.prefs)
        detector = self._wanted_detector(self.detector_box.sensitivity())
        self.config = replace(self.config, detector=detector)
        self._apply_detector()
        self.save_prefs()
        preset = sensitivity_of(detector) or "custom"
        when = "from the next frame" if self.is_playing else "when playback starts"
        near = (
            f"close-up pass from {detector.near_face} px"
            if detector.near_face
            else ("no close-up pass")
        )
        self.statusBar().showMessage(
            f"Detector: {preset} sensitivity, faces from {detector.min_face_size} px, {near}, "
            f"{when}"
        )

    def _apply_detector(self) -> None:
        """Bring the pipeline's detector to ``self.config.detector``.

        While a video plays, the worker thread runs the detector, so the settings are handed
        to it and it applies them before its next frame; otherwise they are applied here.
        """
        if self.pipeline is None:
            return  # the loader builds the detector from the config
        if self._worker is not None:
            self._worker.set_detector_config(self.config.detector)
        elif self.pipeline.detector.config != self.config.detector:
            self.pipeline.detector.configure(self.config.detector)

    def _remember_source(self) -> None:
        """Keep the picked source; a file by its absolute path, so any folder can start it."""
        if self.picker.problem() is not None:
            return
        spec = self.picker.spec()
        if describe(spec) == "file":
            spec = str(Path(os.path.expanduser(spec)).absolute())  # never raises
        self.prefs.source = spec
        self.save_prefs()

    def save_prefs(self) -> None:
        """Write the preferences to the settings, if this window has any."""
        if self.settings is None:
            return
        problem = self.prefs.save(self.settings)
        if problem and not self._settings_warned:  # once: it would repeat on every change
            self._settings_warned = True
            self._add_notice("settings", f"Your choices will not be remembered: {problem}.")
        elif not problem and self._settings_warned:  # the file can be written again
            self._settings_warned = False
            self._drop_notice("settings")

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
        self._stop_recording()
        self.detector_box.apply_to(self.prefs)
        self.save_prefs()
        self._remember_source()
        super().closeEvent(event)


def first_size(screen: QScreen | None) -> tuple[int, int]:
    """The window's size when it opens: WINDOW_SIZE, taller where the screen has room, and
    no larger than a small screen (1024 x 600): Qt keeps it above the layout's minimum, so
    the side panel stays in sight and the pages scroll."""
    if screen is None:
        return WINDOW_SIZE
    available = screen.availableGeometry()
    room = available.height() - TITLE_BAR_PX
    height = min(max(WINDOW_SIZE[1], min(ROOMY_HEIGHT, room)), room)
    return min(WINDOW_SIZE[0], available.width()), height


def scrolling(page: QWidget) -> QScrollArea:
    """``page`` in a frameless scroll area: when a notice below the tabs takes their height,
    the page scrolls instead of squeezing its rows until their text is cut off."""
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


def run_window(
    config: PipelineConfig,
    weights: dict[str, Path],
    source: str | None = None,
    given: WindowFlags = WindowFlags(),
) -> int:
    """Open the window and run the Qt event loop; returns the exit code.

    ``given`` is what the command line set (the rest keeps its saved setting). Playback
    starts at once, from ``source`` or the last source played; if that fails the window
    says why.
    """
    settings = user_settings()
    prefs = Preferences.load(settings)
    apply_command_line(prefs, given)
    config = replace(config, model=prefs.model, device=prefs.device)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    window = MainWindow(config, weights, source, settings=settings, prefs=prefs)
    window.show()

    received: list[int] = []

    def close_on_signal(signum: int) -> None:
        """Ctrl+C, SIGTERM and SIGHUP (unless started under nohup) close the window as Quit
        does, so a recording in progress is finished and the settings are kept."""
        received.append(signum)
        log.warning("%s received; closing the window", signal.Signals(signum).name)
        window.close()

    wake = QTimer()  # lets Python see Ctrl+C while Qt's event loop runs
    wake.timeout.connect(lambda: None)
    wake.start(200)
    with stop_signals_call(close_on_signal):
        code = app.exec()
    return 128 + received[0] if received else code
