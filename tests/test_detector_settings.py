"""Detector settings: the window's Detector group (live while a video plays, saved in a
temporary INI file) and ``--sensitivity`` / ``--min-face`` / ``--near-face`` on the command
line.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import fixture_bgr, on_canvas, write_video  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from app.cli import build_parser, pipeline_config, window_sensitivity  # noqa: E402
from app.config import SENSITIVITY, DetectorConfig, PipelineConfig  # noqa: E402
from app.detector import FaceDetector, part_of  # noqa: E402
from app.preferences import Preferences  # noqa: E402
from app.settings_panel import CUSTOM_TITLE, DetectorSettings  # noqa: E402
from app.window import MainWindow  # noqa: E402
from app.window_flags import WindowFlags, apply_command_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRAME_TIMEOUT_MS = 45_000  # inference is slow on this machine; an upper bound
STANDARD, HIGH = SENSITIVITY["standard"], SENSITIVITY["high"]


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """Two seconds of one unmasked face, 640x480 at 5 fps."""
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    return write_video(tmp_path_factory.mktemp("detector") / "face.mp4", [frame] * 10, fps=5)


@pytest.fixture
def detector(pipeline):
    """The shared pipeline's detector, put back as it was after the test."""
    before = pipeline.detector.config
    yield pipeline.detector
    FaceDetector.configure(pipeline.detector, before)


def make_window(qtbot, pipeline, settings, prefs=None, source=None, config=None):
    win = MainWindow(
        config or PipelineConfig(device="cpu"),
        pipeline=pipeline,
        source=None if source is None else str(source),
        autostart=False,
        settings=settings,
        prefs=prefs,
    )
    qtbot.addWidget(win)
    shown = []
    win.frame_displayed.connect(lambda image, stats: shown.append(stats))
    win.shown = shown
    return win


def choose(win, sensitivity):
    combo = win.detector_box.sensitivity_combo
    combo.setCurrentIndex(combo.findData(sensitivity))


def test_changes_while_playing_reach_the_detector_on_the_worker_thread(
    qtbot, pipeline, detector, settings, prefs, face_video, monkeypatch
):
    win = make_window(qtbot, pipeline, settings, prefs, face_video)
    from_gui = []  # configure() calls on the GUI thread while the worker may be detecting
    original = detector.configure

    def configure(config):
        if threading.current_thread() is threading.main_thread() and win.is_playing:
            from_gui.append(config)
        original(config)

    monkeypatch.setattr(detector, "configure", configure)
    assert detector.config.thresholds == STANDARD["thresholds"]
    assert "not faces" in win.detector_box.sensitivity_combo.toolTip()
    win.loop_check.setChecked(True)
    win.start()
    qtbot.waitUntil(lambda: len(win.shown) >= 1, timeout=FRAME_TIMEOUT_MS)

    choose(win, "high")
    win.detector_box.min_face_spin.setValue(40)
    seen = len(win.shown)  # frames already under way may still use the old settings
    qtbot.waitUntil(
        lambda: len(win.shown) >= seen + 2 and detector.config.min_face_size == 40,
        timeout=FRAME_TIMEOUT_MS,
    )
    assert detector.config.thresholds == HIGH["thresholds"]
    assert detector.config.min_score == HIGH["min_score"]
    assert detector.config.min_face_size == 40
    assert win.is_playing and win.message == "" and from_gui == []

    win.stop()
    qtbot.waitUntil(lambda: not win.is_playing, timeout=FRAME_TIMEOUT_MS)
    win.close()


def test_settings_apply_at_once_when_stopped_and_round_trip(
    qtbot, pipeline, detector, settings, prefs
):
    win = make_window(qtbot, pipeline, settings, prefs)
    spin = win.detector_box.min_face_spin
    assert spin.value() == DetectorConfig().min_face_size
    assert (spin.minimum(), spin.maximum()) == (12, 200)
    choose(win, "high")
    spin.setValue(48)
    assert detector.config.min_face_size == 48
    assert detector.config.thresholds == HIGH["thresholds"]
    saved = Preferences.load(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert (saved.sensitivity, saved.min_face_size) == ("high", 48)  # saved when changed
    win.close()

    FaceDetector.configure(detector, DetectorConfig())  # as a fresh start would have it
    again = make_window(qtbot, pipeline, QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert again.detector_box.sensitivity() == "high"
    assert again.detector_box.min_face_spin.value() == 48
    assert detector.config.thresholds == HIGH["thresholds"]
    assert detector.config.min_face_size == 48
    again.close()


def test_unusable_saved_values_fall_back_to_defaults(settings):
    settings.setValue("detector/sensitivity", "extreme")
    settings.setValue("detector/min_face_size", 3)
    loaded = Preferences.load(settings)
    assert (loaded.sensitivity, loaded.min_face_size) == ("standard", 20)


def test_saved_folders_are_full_paths_and_a_bad_model_is_said(settings, caplog, monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    defaults = Preferences.defaults()
    settings.setValue("folders/alerts_dir", "~/mw-alerts")
    settings.setValue("folders/snapshots_dir", "relsnaps")
    settings.setValue("folders/exports_dir", "~nosuchuser/x")  # Path.expanduser would raise
    settings.setValue("model", "Teacher")
    loaded = Preferences.load(settings)
    assert loaded.alerts_dir == Path("/home/someone/mw-alerts")
    assert loaded.snapshots_dir == defaults.snapshots_dir and loaded.model == "student"
    assert loaded.exports_dir == defaults.exports_dir
    said = [r.getMessage() for r in caplog.records]
    assert "ignoring saved snapshots folder 'relsnaps': not a full path" in said
    assert "ignoring saved exports folder '~nosuchuser/x': not a full path" in said
    assert "ignoring saved model 'Teacher': use student or teacher" in said


def test_unusable_saved_values_are_replaced_in_the_file_so_they_are_said_once(
    qtbot, pipeline, detector, settings, caplog, tmp_path
):
    blocker = tmp_path / "alerts-file"
    blocker.write_text("the user's notes")
    for key, value in [
        ("model", "Teacher"),
        ("loop", "maybe"),
        ("alerts/delay_s", "nan"),
        ("detector/sensitivity", "extreme"),
        ("detector/min_face_size", "24.0"),  # a whole number, written as a float: kept
        ("folders/snapshots_dir", "relsnaps"),
        ("folders/alerts_dir", str(blocker)),
    ]:
        settings.setValue(key, value)
    win = make_window(qtbot, pipeline, settings)
    assert win.message_label.text().startswith(  # the window is not shown here
        "Saved settings that could not be used were reset to their defaults: snapshots folder "
        "'relsnaps': not a full path; model 'Teacher': use student or teacher; "
    )
    said = [r.getMessage() for r in caplog.records]
    assert (
        f"saved alerts folder {blocker} is a file, not a folder; choose another in the "
        "window" in said
    )
    assert sum(m.startswith("ignoring saved") for m in said) == 5, said
    win.close()
    caplog.clear()
    again = Preferences.load(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert not [r for r in caplog.records if "ignoring saved" in r.getMessage()]
    assert (again.model, again.loop, again.sensitivity) == ("student", False, "standard")
    assert again.min_face_size == 24
    assert again.alerts_dir == blocker and blocker.read_text() == "the user's notes"


def test_a_saved_camera_index_out_of_range_and_a_folder_that_is_a_file_are_said_in_the_window(
    qtbot, pipeline, detector, settings, caplog, tmp_path
):
    """A hand-edited ``source=-1``: the window said "There is no camera index -1" beside a
    Camera field showing 0, and the file kept -1, so it was said at every start. A saved
    exports folder that is a file was said on stderr only."""
    movie = tmp_path / "face.mp4"
    movie.write_bytes(b"the user's video")
    settings.setValue("source", "-1")
    settings.setValue("folders/exports_dir", str(movie))
    win = make_window(qtbot, pipeline, settings)
    assert win.picker.camera_radio.isChecked() and win.picker.camera_spin.value() == 0
    assert win.picker.problem() is None and win.picker.spec() == "0"
    assert win.message_label.text() == (  # the window is not shown here
        "Saved settings that could not be used were reset to their defaults: source '-1': "
        "camera indices run from 0 to 999.\n"
        f"The saved exports folder {movie} is a file, not a folder; move the file away or "
        "export the statistics elsewhere (Export CSV...)."
    )
    win.close()
    caplog.clear()
    again = Preferences.load(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert again.source == "0" and again.ignored == []
    assert again.exports_dir == movie and movie.read_bytes() == b"the user's video"

    win = make_window(qtbot, pipeline, settings)  # the file is said again; -1 is gone
    win.show()
    assert win.message.startswith(f"The saved exports folder {movie} is a file")
    win.face_stats.add(0.0, [])
    assert win.export_csv(tmp_path / "stats.csv") == tmp_path / "stats.csv"
    assert win.message == ""  # another exports folder now: the file goes unsaid
    win.close()


def test_a_saved_stream_login_makes_the_settings_file_private(settings):
    prefs = Preferences.defaults()
    prefs.source = "/videos/hall.mp4"
    assert prefs.save(settings) is None
    path = Path(settings.fileName())
    path.chmod(0o644)
    assert prefs.save(settings) is None and path.stat().st_mode & 0o777 == 0o644
    prefs.source = "rtsp://admin:hunter2@127.0.0.1:8554/cam"
    assert prefs.save(settings) is None
    assert path.stat().st_mode & 0o777 == 0o600
    assert Preferences.load(QSettings(str(path), QSettings.Format.IniFormat)).source == (
        prefs.source
    )


def test_hand_edited_yes_no_and_names_with_commas(settings, caplog):
    """An ini file splits an unquoted ``a,b`` into a list; ``loop=maybe`` is neither yes nor
    no. Names are read back exactly as typed."""
    path = settings.fileName()
    settings.sync()
    with open(path, "a") as ini:
        ini.write("[General]\nsource=/videos/hall,east, 2.mp4\nloop=maybe\n")
        ini.write("[alerts]\nsound=YES\n[folders]\nalerts_dir=/data/al, erts\n")
    loaded = Preferences.load(QSettings(path, QSettings.Format.IniFormat))
    assert loaded.source == "/videos/hall,east, 2.mp4"
    assert loaded.alerts_dir == Path("/data/al, erts")
    assert loaded.loop is False and loaded.alert_sound is True
    said = [r.getMessage() for r in caplog.records]
    assert "ignoring saved loop 'maybe': use true or false" in said


def test_command_line_thresholds_stay_until_a_preset_is_picked(qtbot, pipeline, detector, settings):
    settings.setValue("detector/sensitivity", "high")
    custom = DetectorConfig(thresholds=(0.5, 0.6, 0.6))
    win = make_window(
        qtbot, pipeline, settings, config=PipelineConfig(detector=custom, device="cpu")
    )
    combo = win.detector_box.sensitivity_combo
    assert combo.currentText() == CUSTOM_TITLE and detector.config.thresholds == (0.5, 0.6, 0.6)
    win.detector_box.min_face_spin.setValue(30)
    assert detector.config.thresholds == (0.5, 0.6, 0.6)
    assert detector.config.min_face_size == 30

    choose(win, "standard")
    assert combo.findText(CUSTOM_TITLE) == -1 and combo.count() == len(SENSITIVITY)
    assert detector.config.thresholds == STANDARD["thresholds"]
    win.close()
    assert Preferences.load(settings).sensitivity == "standard"


@pytest.mark.parametrize(
    "argv, thresholds, min_score, window",
    [
        ([], STANDARD["thresholds"], STANDARD["min_score"], None),
        (["--sensitivity", "high"], HIGH["thresholds"], HIGH["min_score"], "high"),
        (
            ["--sensitivity", "high", "--thresholds", "0.5", "0.6", "0.7"],
            (0.5, 0.6, 0.7),
            HIGH["min_score"],
            None,
        ),
        (["--sensitivity", "high", "--min-score", "0.8"], HIGH["thresholds"], 0.8, None),
        (
            ["--thresholds", *map(str, HIGH["thresholds"]), "--min-score", str(HIGH["min_score"])],
            HIGH["thresholds"],
            HIGH["min_score"],
            "high",
        ),
    ],
)
def test_explicit_flags_win_over_the_sensitivity_preset(argv, thresholds, min_score, window):
    args = build_parser().parse_args(argv)
    detector = pipeline_config(args).detector
    assert (detector.thresholds, detector.min_score) == (thresholds, min_score)
    assert detector.min_face_size == DetectorConfig().min_face_size
    assert window_sensitivity(args, detector) == window


def run_app(*args):
    command = [sys.executable, "-m", "app", "--headless", "--quiet", *map(str, args)]
    return subprocess.run(
        command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=240
    )


def test_headless_high_sensitivity_runs(tmp_path):
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    video = write_video(tmp_path / "short.mp4", [frame] * 3)
    events = tmp_path / "events.jsonl"
    proc = run_app(
        "--source",
        video,
        "--events",
        events,
        "--device",
        "cpu",
        "--sensitivity",
        "high",
        "--min-face",
        "24",
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 frames" in proc.stdout
    first = json.loads(events.read_text().splitlines()[0])
    assert "no_mask" in [face["label"] for face in first["faces"]]


def test_headless_unknown_sensitivity_is_a_usage_error(tmp_path):
    proc = run_app("--source", tmp_path / "any.mp4", "--sensitivity", "bogus")
    assert proc.returncode == 2
    assert "argument --sensitivity: invalid choice: 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_two_windows_sharing_settings_keep_each_others_choices(settings):
    from PySide6.QtCore import QSettings

    def reopened():
        return QSettings(settings.fileName(), QSettings.Format.IniFormat)

    Preferences.defaults().save(settings)
    first, second = Preferences.load(reopened()), Preferences.load(reopened())
    first.alert_delay_s = 7.0
    first.save(reopened())
    second.min_face_size = 40
    second.save(reopened())  # closed last: it must not put the delay back
    saved = Preferences.load(reopened())
    assert (saved.alert_delay_s, saved.min_face_size) == (7.0, 40)


def test_a_minimum_face_larger_than_the_frame_is_said_once(detector, caplog):
    detector.configure(replace(detector.config, min_face_size=500, scale=1.0))
    frame = np.full((240, 320, 3), 128, np.uint8)
    with caplog.at_level("WARNING", logger="app.detector"):
        assert detector.detect(frame) == [] and detector.detect(frame) == []
    said = [r.getMessage() for r in caplog.records if r.name == "app.detector"]
    assert said == [
        "the minimum face size (500 px) is larger than the 320x240 frame: no face can be "
        "found; lower --min-face (Minimum face in the window)"
    ]


def boxes_of(detector, frame_bgr, **settings):
    FaceDetector.configure(detector, replace(DetectorConfig(), **settings))
    return [tuple(round(v) for v in d.box) for d in detector.detect(frame_bgr[:, :, ::-1].copy())]


def test_a_near_face_the_tuned_nets_miss_is_found_by_the_stock_pass(detector):
    """An unmasked face filling a webcam frame: the tuned nets (learnt on small street faces)
    pass over it, the stock pass for faces of --near-face px and up boxes it."""
    near = on_canvas(fixture_bgr("near_unmasked.jpg"))
    assert boxes_of(detector, near, near_face=0) == []
    (box,) = boxes_of(detector, near)  # the default, 100 px
    assert box[2] - box[0] > 250 and box[0] < 320 < box[2] and box[1] < 240 < box[3]
    assert boxes_of(detector, near, near_face=400) == []  # larger than this face
    assert boxes_of(detector, near, min_face_size=400) == []  # min face bounds it too
    # a face the tuned nets find keeps their box alone: no second box from the stock pass
    found = on_canvas(fixture_bgr("no_mask_1.jpg"))
    assert len(boxes_of(detector, found)) == 1
    assert boxes_of(detector, found) == boxes_of(detector, found, near_face=0)
    # at min face 24 the tuned nets box only a part of this face; the stock face replaces it
    masked = on_canvas(fixture_bgr("mask_2.png"))
    (part,) = boxes_of(detector, masked, min_face_size=24, near_face=0)
    (face,) = boxes_of(detector, masked, min_face_size=24)
    assert part_of(part, face) and face[2] - face[0] > 250, (part, face)


def test_a_face_as_tall_as_the_frame_is_found(detector):
    """Someone leaning into a webcam: the face fills the frame's height (its box runs past
    the edges). The stock pass's pyramid for 100 px stops at a level where that face is wider
    than P-Net's window; the level that fits it is searched too."""
    photo = fixture_bgr("near_unmasked.jpg")
    tall = cv2.resize(photo, (round(photo.shape[1] * 480 / photo.shape[0]), 480))
    frame = np.zeros((480, 640, 3), np.uint8)  # black bars left and right, as a 4:3 webcam
    left = (640 - tall.shape[1]) // 2
    frame[:, left : left + tall.shape[1]] = tall
    (box,) = boxes_of(detector, frame)
    assert box[0] < 320 < box[2] and box[1] < 240 < box[3] and box[2] - box[0] > 400, box
    assert boxes_of(detector, frame, near_face=0) == []  # the tuned nets alone miss it


def test_near_face_on_the_command_line(tmp_path):
    video = write_video(tmp_path / "near.mp4", [on_canvas(fixture_bgr("near_unmasked.jpg"))] * 2)
    for flag, labels in (("100", ["no_mask"]), ("0", [])):
        events = tmp_path / f"near{flag}.jsonl"
        proc = run_app("--source", video, "--events", events, "--near-face", flag)
        assert proc.returncode == 0, proc.stderr
        first = json.loads(events.read_text().splitlines()[0])
        assert [face["label"] for face in first["faces"]] == labels, flag
    proc = run_app("--source", video, "--near-face", "8")
    assert proc.returncode == 2
    assert "argument --near-face: must be 0 (off) or between 12 and 4096 pixels, not 8" in (
        proc.stderr
    )


def test_the_close_up_pass_is_a_saved_window_setting(qtbot, pipeline, detector, settings, prefs):
    """Unticking "Close-up faces" turns the stock pass off at once (the near face is no
    longer boxed), is saved, and a window opened later starts with it off."""
    near = on_canvas(fixture_bgr("near_unmasked.jpg"))[:, :, ::-1].copy()
    win = make_window(qtbot, pipeline, settings, prefs)
    check, size = win.detector_box.near_check, win.detector_box.near_spin
    assert check.isChecked() and check.isEnabled() and size.isEnabled()
    assert size.value() == 100 and size.text() == "100 px"
    assert detector.config.near_face == 100 and len(detector.detect(near)) == 1
    size.setValue(400)  # larger than this face: the pass no longer boxes it
    assert detector.config.near_face == 400 and detector.detect(near) == []
    assert "close-up pass from 400 px" in win.statusBar().currentMessage()
    size.setValue(160)
    check.setChecked(False)
    assert detector.config.near_face == 0 and detector.detect(near) == []
    assert not size.isEnabled() and "no close-up pass" in win.statusBar().currentMessage()
    saved = Preferences.load(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert saved.near_faces is False and saved.near_face_size == 160
    win.close()

    FaceDetector.configure(detector, DetectorConfig())
    reopened = QSettings(settings.fileName(), QSettings.Format.IniFormat)
    again = make_window(qtbot, pipeline, reopened)
    box = again.detector_box
    assert not box.near_check.isChecked() and detector.config.near_face == 0
    assert box.near_spin.value() == 160 and not box.near_spin.isEnabled()
    box.near_check.setChecked(True)  # the saved size comes back with the tick
    assert detector.config.near_face == 160 and box.near_spin.isEnabled()
    assert len(detector.detect(near)) == 1
    assert "close-up pass from 160 px" in again.statusBar().currentMessage()
    again.close()


def test_near_face_flag_and_saved_word_reach_the_preferences(settings, caplog):
    prefs = Preferences.defaults(temporary=True)
    apply_command_line(prefs, WindowFlags(device="cpu", near_face=0))
    assert prefs.near_faces is False
    apply_command_line(prefs, WindowFlags(device="cpu"))  # not given: the saved choice stays
    assert prefs.near_faces is False
    apply_command_line(prefs, WindowFlags(device="cpu", near_face=120))
    assert prefs.near_faces is True and prefs.near_face_size == 120
    # off, the size kept for later
    apply_command_line(prefs, WindowFlags(device="cpu", near_face=0))
    assert prefs.near_faces is False and prefs.near_face_size == 120
    # the window's spin box stops at 1000
    apply_command_line(prefs, WindowFlags(device="cpu", near_face=4000))
    assert prefs.near_faces is True and prefs.near_face_size == 1000
    settings.setValue("detector/near_faces", "sometimes")
    settings.setValue("detector/near_face_size", "30")
    loaded = Preferences.load(settings)
    assert loaded.near_faces is True and loaded.near_face_size == 100
    said = [r.getMessage() for r in caplog.records]
    assert "--near-face 4000 is outside the window's range 40-1000 px; using 1000" in said
    assert "ignoring saved detector/near_faces 'sometimes': use true or false" in said
    assert "ignoring saved detector/near_face_size '30': use 40 to 1000 pixels" in said
    parser = build_parser()
    assert parser.parse_args([]).near_face is None  # so the window keeps its saved choice
    assert pipeline_config(parser.parse_args([])).detector.near_face == 100
    assert pipeline_config(parser.parse_args(["--near-face", "0"])).detector.near_face == 0


def test_on_stock_weights_the_close_up_pass_is_greyed_out(qtbot):
    box = DetectorSettings(Preferences.defaults(temporary=True))
    qtbot.addWidget(box)
    box.set_stock(True)  # what the window does once the loaded detector says so
    assert not box.near_check.isEnabled() and not box.near_spin.isEnabled()
    assert "stock weights already" in box.near_check.toolTip()
    box.set_stock(False)
    assert box.near_check.isEnabled() and box.near_spin.isEnabled()
    assert "close to the camera" in box.near_spin.toolTip()


def test_the_stock_nets_are_built_only_when_the_pass_runs():
    """--near-face 0 spares the second MTCNN's memory and start-up, not only its time."""
    detector = FaceDetector(DetectorConfig(near_face=0))
    near = on_canvas(fixture_bgr("near_unmasked.jpg"))[:, :, ::-1].copy()
    assert detector.detect(near) == [] and detector._stock is None
    detector.configure(DetectorConfig())
    assert len(detector.detect(near)) == 1 and detector._stock is not None


def test_remembered_detector_settings_away_from_the_defaults_are_said_when_ready(
    qtbot, pipeline, settings, prefs
):
    """A high sensitivity left from another day boxes many non-faces into the statistics: the
    window says it starts with it (a new user did not notice)."""
    win = make_window(qtbot, pipeline, settings, prefs)
    assert win.statusBar().currentMessage() == "Ready: student model on cpu"
    win.close()
    prefs.sensitivity, prefs.min_face_size = "high", 13
    again = make_window(qtbot, pipeline, settings, prefs)
    assert again.statusBar().currentMessage() == (
        "Ready: student model on cpu; detector at high sensitivity and minimum face 13 px"
    )
    again.close()
