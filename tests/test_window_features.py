"""The window's alert banner, statistics, snapshot, recording, shortcuts and saved settings,
offscreen, with settings and output folders under tmp_path (never the user's own).
"""

import errno
import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import ROOT, fixture_bgr, on_canvas, write_video  # noqa: E402
from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.alerts import ALERTS_FILE  # noqa: E402
from app.config import PipelineConfig  # noqa: E402
from app.preferences import Preferences  # noqa: E402
from app.window import MainWindow  # noqa: E402

FRAME_TIMEOUT_MS = 45_000  # inference is slow on this machine; these are upper bounds


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """Four seconds of one unmasked face, 640x480 at 5 fps."""
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    return write_video(tmp_path_factory.mktemp("features") / "no_mask.mp4", [frame] * 20, fps=5)


def make_window(qtbot, pipeline, settings, prefs, source):
    win = MainWindow(
        PipelineConfig(device="cpu"),
        source=str(source),
        pipeline=pipeline,
        autostart=False,
        settings=settings,
        prefs=prefs,
    )
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    shown = []
    win.frame_displayed.connect(lambda image, stats: shown.append(stats))
    win.shown = shown
    return win


@pytest.fixture
def window(qtbot, pipeline, settings, prefs, face_video):
    win = make_window(qtbot, pipeline, settings, prefs, face_video)
    yield win
    win.close()


def test_alert_banner_log_and_statistics(qtbot, window, prefs, tmp_path, monkeypatch):
    beeps = []
    monkeypatch.setattr(QApplication, "beep", staticmethod(lambda: beeps.append(1)))
    window.settings_panel.delay_spin.setValue(0.3)
    window.settings_panel.sound_check.setChecked(True)
    assert not window.banner.isVisible()
    window.start()
    qtbot.waitUntil(window.banner.isVisible, timeout=FRAME_TIMEOUT_MS)
    assert window.banner.text().startswith("Unmasked face for 0.3 s")
    assert "c81e1e" in window.banner.styleSheet() and beeps == [1]

    lines = [json.loads(line) for line in (prefs.alerts_dir / ALERTS_FILE).read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["track"] == window.alerts[0].track_id
    assert lines[0]["media_time_s"] >= 0.3
    assert cv2.imread(str(prefs.alerts_dir / lines[0]["snapshot"])) is not None

    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert len(window.alerts) == 1  # one face, one alert
    assert window.stats_panel.faces_label.text() == "1"
    assert window.stats_panel.session_label.text() == "0% (0 of 1)"
    assert window.stats_panel.plot.rows
    csv_path = window.export_csv(tmp_path / "stats.csv")
    header, *rows = csv_path.read_text().splitlines()
    assert header == "time_s,faces,masked,unmasked,masked_share"
    assert rows and all(row.endswith(",1,0,1,0.000") for row in rows)


def two_faces_frame():
    """Two unmasked people side by side, each photo fitted into half of a 640x480 frame."""
    halves = []
    for name in ("no_mask_1.jpg", "no_mask_2.jpg"):
        photo = fixture_bgr(name)
        scale = min(320 / photo.shape[1], 480 / photo.shape[0])
        photo = cv2.resize(photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)))
        half = np.full((480, 320, 3), 255, np.uint8)
        top, left = (480 - photo.shape[0]) // 2, (320 - photo.shape[1]) // 2
        half[top : top + photo.shape[0], left : left + photo.shape[1]] = photo
        halves.append(half)
    return np.hstack(halves)


def test_faces_alerting_together_are_all_named(qtbot, pipeline, settings, prefs, tmp_path):
    clip = write_video(tmp_path / "two.mp4", [two_faces_frame()] * 20, fps=5)
    win = make_window(qtbot, pipeline, settings, prefs, clip)
    win.settings_panel.delay_spin.setValue(0.3)
    narrowest = win.minimumSizeHint().width()
    win.start()
    qtbot.waitUntil(lambda: len(win.alerts) == 2, timeout=FRAME_TIMEOUT_MS)
    ids = sorted(alert.track_id for alert in win.alerts)
    assert win.banner.isVisible()
    assert win.banner.text().startswith(
        f"2 faces unmasked for 0.3 s or more (faces {ids[0]} and {ids[1]}, the last at 0:0"
    )
    # the banner wraps: naming faces never makes the window wider than it could be before
    assert win.minimumSizeHint().width() <= narrowest
    win.stop()
    qtbot.waitUntil(lambda: not win.is_playing, timeout=FRAME_TIMEOUT_MS)
    win.close()


def test_snapshot_button_and_shortcuts(qtbot, window, prefs):
    assert "(S)" in window.snapshot_button.toolTip() and "(Space)" in window.start_button.toolTip()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.is_playing
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)

    window.snapshot_button.click()
    qtbot.keyClick(window, Qt.Key.Key_S)
    pngs = sorted(prefs.snapshots_dir.glob("*.png"))
    assert len(pngs) == 2
    for png in pngs:
        image = QImage(str(png))
        assert (image.width(), image.height()) == (640, 480)
    assert not [p for p in prefs.snapshots_dir.iterdir() if "partial" in p.name]

    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_ctrl_o_while_playing_plays_the_chosen_file_instead(
    qtbot, window, face_video, tmp_path, monkeypatch
):
    masked = write_video(tmp_path / "masked.mp4", [on_canvas(fixture_bgr("mask_1.jpg"))] * 20, 5)
    chosen = []

    def dialog(parent, caption, folder, filter):
        chosen.append(folder)
        return str(masked), filter

    monkeypatch.setattr("app.source_picker.QFileDialog.getOpenFileName", dialog)
    window.loop_check.setChecked(True)  # still playing when Ctrl+O comes, however slow
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    assert not window.picker.isEnabled()  # locked while a source plays

    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert chosen == [str(face_video.parent)]  # the dialog opens in the playing file's folder
    qtbot.waitUntil(
        lambda: window.is_playing and window._worker.spec == str(masked), timeout=FRAME_TIMEOUT_MS
    )
    window.shown.clear()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    assert [face.label for face in window.shown[-1].faces] == ["mask"]
    assert window.picker.spec() == str(masked)
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)

    monkeypatch.setattr(
        "app.source_picker.QFileDialog.getOpenFileName", lambda *a: ("", "")
    )  # cancelled while playing: the source plays on
    window.start()
    qtbot.waitUntil(lambda: window.is_playing, timeout=FRAME_TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert window.is_playing and window._worker.spec == str(masked)
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_record_writes_a_playable_mp4_only_when_stopped(qtbot, window, prefs):
    window.loop_check.setChecked(True)
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.record_button.isChecked() and window.recorder is not None
    recorder = window.recorder
    start = len(window.shown)
    qtbot.waitUntil(lambda: len(window.shown) >= start + 3, timeout=FRAME_TIMEOUT_MS)
    assert not recorder.path.exists() and recorder.tmp.exists()  # only a hidden partial file

    window.stop()  # stopping playback finishes the recording
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert not window.record_button.isChecked() and window.recorder is None
    assert [p.name for p in prefs.recordings_dir.iterdir()] == [recorder.path.name]
    video = cv2.VideoCapture(str(recorder.path))
    ok, frame = video.read()
    assert ok and frame.shape == (480, 640, 3)
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) >= 3


def test_a_killed_windows_unfinished_recording_is_removed_when_recording_again(
    qtbot, window, prefs, caplog
):
    """kill -9 during a recording leaves its hidden partial mp4 (no index: unplayable). The
    next recording into that folder removes it, and only it."""
    import os
    import subprocess
    import sys

    from models import checkpoint

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = prefs.recordings_dir
    folder.mkdir(parents=True, exist_ok=True)
    old = 1_000_000_000  # 2001: long quiet
    killed = folder / f".maskwatch-20250101-000000-000.partial-{gone.pid}.mp4"
    alive = folder / f".maskwatch-20250101-000000-001.partial-{os.getpid()}.mp4"
    fresh = folder / f".maskwatch-20250101-000000-002.partial-{gone.pid}.mp4"
    other = folder / f".holiday.partial-{gone.pid}.mp4"  # not a window's recording
    for path in (killed, alive, fresh, other):
        path.write_bytes(b"\0\0\0\x18ftypisom" + bytes(2000))
    model = folder / f".maskwatch-onnx.partial-{gone.pid}.mp4"  # a model, whatever its name
    model.write_bytes(checkpoint.default_weights("student").read_bytes())
    for path in (killed, alive, other, model):
        os.utime(path, (old, old))
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.recorder is not None
    assert not killed.exists() and alive.exists() and fresh.exists() and other.exists()
    assert model.exists()
    assert f"removed {killed} (0.0 MB), the unfinished recording of a run that was" in (caplog.text)
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_a_recording_stops_and_is_kept_before_the_disk_is_full(qtbot, window, prefs, monkeypatch):
    """OpenCV's writer says nothing on a full disk: a breaker's recording went on "recording"
    for minutes into a 300 KB disk and kept nothing. It stops while the index still fits.
    The free space is read through ``app.recording.free_bytes``, replaced here: a real small
    disk needs a mount this suite cannot count on."""
    from app import recording

    free = {"bytes": 10 * 2**30}
    monkeypatch.setattr(recording, "free_bytes", lambda _folder: free["bytes"])
    window.loop_check.setChecked(True)
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    monkeypatch.setattr(recording, "FREE_CHECK_S", 0.1)  # look every other frame
    window.record_button.click()
    recorder = window.recorder
    start = len(window.shown)
    qtbot.waitUntil(lambda: len(window.shown) >= start + 3, timeout=FRAME_TIMEOUT_MS)
    free["bytes"] = 2**20
    qtbot.waitUntil(lambda: window.recorder is None, timeout=FRAME_TIMEOUT_MS)
    assert not window.record_button.isChecked() and window.is_playing
    assert window.message == (
        f"Recording stopped for low disk: the disk holding {prefs.recordings_dir} has 1.0 MB "
        f"free and a recording needs at least 50 MB. What was recorded is in {recorder.path}."
    )
    video = cv2.VideoCapture(str(recorder.path))
    assert video.read()[0] and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) >= 2
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_record_does_not_start_on_a_nearly_full_disk(qtbot, window, prefs, monkeypatch):
    """A tester's 10 MB disk: Record began a file, stopped at once and said the empty file
    "could not be written completely", hiding the low disk. It now says why it does not
    start and leaves nothing behind. Free space is read through ``app.recording.free_bytes``,
    replaced here: a real small disk needs a mount this suite cannot count on."""
    from app import recording

    monkeypatch.setattr(recording, "free_bytes", lambda _folder: 10 * 2**20)
    window.loop_check.setChecked(True)
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.recorder is None and not window.record_button.isChecked()
    assert window.message == (
        f"Cannot record: the disk holding {prefs.recordings_dir} has 10.0 MB free and a "
        "recording needs at least 50 MB. Free some space or pick another recordings folder "
        "in the Alerts & files tab."
    )
    start = len(window.shown)
    qtbot.waitUntil(lambda: len(window.shown) >= start + 2, timeout=FRAME_TIMEOUT_MS)
    assert window.is_playing and window.record_button.text() == "Record"
    assert list(prefs.recordings_dir.iterdir()) == []
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_a_disk_filled_before_the_first_frame_is_said_and_leaves_nothing(
    qtbot, window, prefs, monkeypatch
):
    """Room when Record is pressed, none when the first frame comes: the window says the
    recording stopped for low disk and that nothing was recorded, and no file is left.
    Free space is read through ``app.recording.free_bytes``, replaced here."""
    from app import recording

    readings = iter([10 * 2**30])  # the first reading has room; every later one has 1 MB
    monkeypatch.setattr(recording, "free_bytes", lambda _folder: next(readings, 2**20))
    window.loop_check.setChecked(True)
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    window.record_button.click()
    assert window.recorder is not None
    qtbot.waitUntil(lambda: window.recorder is None, timeout=FRAME_TIMEOUT_MS)
    assert window.message == (
        f"Recording stopped for low disk: the disk holding {prefs.recordings_dir} has 1.0 MB "
        "free and a recording needs at least 50 MB. Nothing was recorded."
    )
    assert window.is_playing and not window.record_button.isChecked()
    assert list(prefs.recordings_dir.iterdir()) == []
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_settings_round_trip_through_an_ini_file(
    qtbot, pipeline, settings, prefs, face_video, tmp_path
):
    win = make_window(qtbot, pipeline, settings, prefs, face_video)
    win.settings_panel.delay_spin.setValue(1.5)
    win.settings_panel.sound_check.setChecked(True)
    win.loop_check.setChecked(True)
    picked = tmp_path / "elsewhere"
    win.settings_panel.folders["snapshots_dir"].set_path(picked)
    win.settings_panel.folders["snapshots_dir"].changed.emit(picked)
    win.close()

    saved = Preferences.load(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert (saved.alert_delay_s, saved.alert_sound, saved.loop) == (1.5, True, True)
    assert saved.snapshots_dir == picked and saved.alerts_dir == prefs.alerts_dir
    assert saved.source == str(face_video) and saved.model == "student"

    again = MainWindow(
        PipelineConfig(device="cpu"),
        pipeline=pipeline,
        autostart=False,
        settings=QSettings(settings.fileName(), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(again)
    assert again.settings_panel.delay_spin.value() == 1.5
    assert again.settings_panel.sound_check.isChecked() and again.loop_check.isChecked()
    assert again.picker.spec() == str(face_video) and again.alert_monitor.delay_s == 1.5
    again.close()
    assert "elsewhere" in (tmp_path / "maskwatch.ini").read_text()


def test_a_recordings_folder_replaced_by_a_file_mid_recording(qtbot, window, prefs):
    import shutil

    window.loop_check.setChecked(True)
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    window.record_button.click()
    start = len(window.shown)
    qtbot.waitUntil(lambda: len(window.shown) >= start + 2, timeout=FRAME_TIMEOUT_MS)
    shutil.rmtree(prefs.recordings_dir)
    prefs.recordings_dir.write_text("the user's file now")
    window.record_button.click()  # stop recording: the file cannot be finished there
    assert window.recorder is None and not window.record_button.isChecked()
    assert window.message.startswith("The recording could not be saved: ")
    assert prefs.recordings_dir.read_text() == "the user's file now"
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_alerts_that_cannot_be_saved_are_said_plainly_until_they_can(qtbot, window, prefs):
    from datetime import datetime

    from app.alerts import Alert

    folder = window.alert_log.folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("a file where the alerts folder should be")
    alert = Alert(1.0, 1, (10, 10, 50, 50), 0.9, datetime.now().astimezone())
    window._raise_alert(alert)
    assert window.message == (
        f"Alerts cannot be saved: {folder} is a file, not a folder. Choose another alerts folder."
    )
    status = window.settings_panel.alert_status
    assert status.text().endswith(f"; not saved in {folder}"), status.text()
    window.start()  # a new run clears the message: the next failing alert says it again
    assert window.message == ""
    window._raise_alert(alert)
    assert window.message.startswith(f"Alerts cannot be saved: {folder} is a file")
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    folder.unlink()
    window._raise_alert(alert)
    assert window.message == "" and (folder / ALERTS_FILE).exists()
    assert status.text().endswith(f"; logged in {folder / ALERTS_FILE}"), status.text()


def test_an_alerts_log_that_holds_a_model_is_refused_and_kept(qtbot, window, prefs):
    from datetime import datetime

    from app.alerts import Alert

    student = ROOT / "models" / "student.pt"
    folder = window.alert_log.folder
    folder.mkdir(parents=True, exist_ok=True)
    model = Path(shutil.copy(student, folder / ALERTS_FILE))
    alert = Alert(1.0, 1, (10, 10, 50, 50), 0.9, datetime.now().astimezone())
    alert_again = Alert(2.0, 2, (10, 10, 50, 50), 0.9, datetime.now().astimezone())
    window._raise_alert(alert)
    window._raise_alert(alert_again)
    assert window.message == (
        f"Alerts cannot be saved: {model} holds PyTorch weights, which alerts are never added "
        "to. Choose another alerts folder."
    )
    assert model.read_bytes() == student.read_bytes() and os.listdir(folder) == [ALERTS_FILE]
    assert len(window.alerts) == 2  # the window goes on alerting
    status = window.settings_panel.alert_status.text()
    assert status.endswith(f"; not saved in {folder}"), status


def test_a_snapshots_folder_that_is_a_file_is_named_plainly(window, prefs, tmp_path):
    blocker = tmp_path / "not a folder"
    blocker.write_text("precious")
    prefs.snapshots_dir = blocker
    window.last_image = QImage(32, 24, QImage.Format.Format_RGB888)
    assert window.snapshot() is None
    text = window.message_label.text()
    assert f"{blocker} is a file, not a folder" in text
    assert "Pick another snapshots folder" in text and "Errno" not in text
    assert blocker.read_text() == "precious"
    # The message goes once a snapshot is saved; another kind's failure stays until mended.
    assert window.export_csv(tmp_path / "early.csv") is None  # nothing counted yet
    assert window.message.startswith("There are no statistics to export yet")
    assert not (tmp_path / "early.csv").exists()
    window.face_stats.add(0.0, [])
    assert window.export_csv(tmp_path) is None
    stats_failure = window.message
    assert stats_failure.startswith(f"The statistics could not be saved as {tmp_path}")
    prefs.snapshots_dir = tmp_path / "snaps"
    assert window.snapshot() is not None and window.message == stats_failure
    assert window.export_csv(tmp_path / "stats.csv") is not None
    assert window.message == ""


# Folders no file can be made in, even by root: /proc and /sys are virtual file systems
# that report 0 bytes free; /proc answers "no such file", /sys "permission denied".
UNWRITABLE = [
    (Path("/proc/self"), "its file system takes no new files"),
    (Path("/sys/kernel"), "permission denied"),
]


@pytest.mark.parametrize("folder, reason", UNWRITABLE)
def test_a_folder_no_file_can_be_made_in_is_said_to_be_not_writable(window, folder, reason):
    """A tester picked /sys/kernel for recordings and was told its disk had 0.0 MB free, and
    /proc/self for snapshots and alerts and was told "No such file or directory" for a
    folder that is there. Each is now said to be not writable, with the cause."""
    from datetime import datetime

    from app.alerts import Alert

    if not folder.is_dir():
        pytest.skip(f"{folder} is not on this system")
    fields = window.settings_panel.folders
    for name in ("alerts_dir", "snapshots_dir", "recordings_dir"):
        fields[name].set_path(folder)
        fields[name].changed.emit(folder)
    where = f"{folder} is not writable ({reason}); pick another"

    window.record_button.setChecked(True)
    assert window.recorder is None and not window.record_button.isChecked()
    assert window.message == f"Cannot record: {where} recordings folder in the Alerts & files tab."

    window.last_image = QImage(32, 24, QImage.Format.Format_RGB888)
    assert window.snapshot() is None
    assert window.message == (
        f"The snapshot could not be saved: {where} snapshots folder in the Alerts & files tab."
    )

    window._raise_alert(Alert(1.0, 1, (10, 10, 50, 50), 0.9, datetime.now().astimezone()))
    assert window.message == (
        f"Alerts cannot be saved: {where} alerts folder in the Alerts & files tab."
    )


def test_a_video_too_small_to_record_says_why_as_headless_does(window, prefs):
    """A 1x1 source in the window: "cannot write video ..." came without the reason that
    headless --output gives for the same frames."""
    window.record_button.setChecked(True)
    path = window.recorder.path
    window._record_frame(QImage(1, 1, QImage.Format.Format_RGB888), 0.0)
    assert window.recorder is None and not window.record_button.isChecked()
    assert window.message == (
        f"Recording stopped, nothing was kept: cannot write video {path} (1x1 frames; "
        "OpenCV's mp4v writer needs at least 2x2)"
    )
    assert list(prefs.recordings_dir.iterdir()) == []


def test_statistics_on_a_full_disk_are_said_in_words(window, tmp_path, monkeypatch):
    """A full disk, as the temporary file's writer meets it: half the text goes, then
    ENOSPC. The message words it as the window's other messages do, without an errno."""
    write = Path.write_text

    def fill_disk(path: Path, text: str, *args, **kwargs) -> int:
        if ".partial-" not in path.name:
            return write(path, text, *args, **kwargs)
        write(path, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(Path, "write_text", fill_disk)
    window.face_stats.add(0.0, [])
    full = tmp_path / "full"
    full.mkdir()
    path = full / "stats.csv"
    assert window.export_csv(path) is None
    assert window.message == (
        f"The statistics could not be saved as {path}: no space left on the disk for {path}"
    )
    assert list(full.iterdir()) == []  # nor half a file, under any name


def test_statistics_are_never_exported_over_the_video_being_watched(window, face_video, tmp_path):
    before = face_video.read_bytes()
    window.face_stats.add(0.0, [])
    alias = tmp_path / "same video.mp4"
    os.link(face_video, alias)  # the dialog may reach it by another name
    for path in (face_video, alias):
        assert window.export_csv(path) is None
        assert (
            window.message
            == f"{path} is the video being watched; save the statistics under another name."
        )
    assert face_video.read_bytes() == before
    # nor over a model, whatever it is called (the dialog offers "All files")
    teacher = shutil.copy(ROOT / "models" / "teacher.pt", tmp_path / "stats.csv")
    weights = teacher.read_bytes()
    assert window.export_csv(teacher) is None
    assert window.message == (
        f"The statistics could not be saved as {teacher}: {teacher} holds PyTorch weights, "
        "which a report or recording never replaces; write it elsewhere"
    )
    assert teacher.read_bytes() == weights


def test_settings_that_cannot_be_saved_are_said_once(qtbot, pipeline, prefs, face_video, tmp_path):
    ini = tmp_path / "MaskWatch.ini"
    ini.mkdir()  # a folder where the settings file should be
    settings = QSettings(str(ini), QSettings.Format.IniFormat)
    win = make_window(qtbot, pipeline, settings, prefs, face_video)
    try:
        win.save_prefs()
        text = win.message_label.text()
        assert text == (
            f"Your choices will not be remembered: settings cannot be saved to {ini}: "
            "it cannot be written."
        )
        win.clear_message()
        win.save_prefs()
        assert win.message_label.text() == ""  # said once
        win.start()  # Start clears the last run's message, not this one
        assert win.message.startswith("Your choices will not be remembered: ")
        win.stop()
        qtbot.waitUntil(lambda: not win.is_playing, timeout=FRAME_TIMEOUT_MS)
        ini.rmdir()  # mended: the next change is kept, and the message goes
        win.loop_check.click()
        assert win.message == ""
        assert "loop=true" in ini.read_text()
    finally:
        win.close()


def test_a_folder_under_a_file_is_named_once_in_the_message(window, prefs, tmp_path):
    blocker = tmp_path / "short.mp4"
    blocker.write_text("a file, not a folder")
    prefs.snapshots_dir = prefs.recordings_dir = blocker / "folder"
    window.last_image = QImage(32, 24, QImage.Format.Format_RGB888)
    assert window.snapshot() is None
    reason = f"{blocker / 'folder'}: a part of the path is a file, not a folder"
    assert window.message == (
        f"The snapshot could not be saved: {reason}. "
        "Pick another snapshots folder in the Alerts & files tab."
    )
    window._start_recording()
    assert window.message == (
        f"Cannot record: {reason}. Pick another recordings folder in the Alerts & files tab."
    )
    assert window.recorder is None and blocker.read_text() == "a file, not a folder"


def test_a_looped_clip_shorter_than_the_alert_delay_is_one_face_that_alerts(
    qtbot, pipeline, settings, prefs, tmp_path
):
    """Each lap of a still clip starts as the last one ended: the same face goes on (one
    face counted, one alert after the delay), and media time keeps counting across laps."""
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    short = write_video(tmp_path / "short.mp4", [frame] * 2, fps=5)  # 0.4 s a lap
    win = make_window(qtbot, pipeline, settings, prefs, short)
    win.loop_check.setChecked(True)
    win.settings_panel.delay_spin.setValue(1.0)
    win.start()
    qtbot.waitUntil(lambda: len(win.alerts) == 1, timeout=FRAME_TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(win.shown) >= 12, timeout=FRAME_TIMEOUT_MS)  # 4 or more laps
    win.stop()
    qtbot.waitUntil(lambda: not win.is_playing, timeout=FRAME_TIMEOUT_MS)
    times = [stats.time_s for stats in win.shown]
    assert all(b > a for a, b in zip(times, times[1:])), times
    assert win.stats_panel.faces_label.text() == "1" and len(win.alerts) == 1
    assert win.alerts[0].time_s >= 1.0
    win.close()


def test_space_on_a_focused_check_box_ticks_it_instead_of_starting(qtbot, window):
    box = window.loop_check
    box.setFocus()  # reached by Tab, as a keyboard user does
    qtbot.waitUntil(box.hasFocus)
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert box.isChecked() and not window.is_playing
    window.start_button.setFocus()  # tabbed onto Start: Space starts, focus moves to Stop
    qtbot.waitUntil(window.start_button.hasFocus)
    qtbot.keyClick(window.start_button, Qt.Key.Key_Space)
    assert window.is_playing and window.stop_button.hasFocus()
    qtbot.keyClick(window.stop_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert window.video.hasFocus()  # Stop disabled at once: the focus goes to the video
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert not box.isChecked() and not box.hasFocus()  # a click leaves Space as it was
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.is_playing
    combo = window.detector_box.sensitivity_combo
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus)
    qtbot.keyClick(combo, Qt.Key.Key_Space)  # opens the list, playback goes on
    assert combo.view().isVisible() and window.is_playing
    combo.hidePopup()
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_ctrl_tab_hands_the_focus_to_the_tab_bar_so_space_still_plays(qtbot, window):
    delay = window.settings_panel.delay_spin
    window.tabs.setCurrentIndex(1)
    delay.setFocus()  # a keyboard user in the alerts tab
    qtbot.waitUntil(delay.hasFocus)
    qtbot.keyClick(delay, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 0
    assert window.tabs.tabBar().hasFocus()  # not the sensitivity list, where Space opens it
    qtbot.keyClick(window.tabs.tabBar(), Qt.Key.Key_Space)
    assert window.is_playing
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def test_a_long_folder_path_keeps_the_folder_name_in_sight(qtbot, pipeline, settings, prefs):
    win = make_window(qtbot, pipeline, settings, prefs, None)
    win.show()
    qtbot.waitExposed(win)
    field = win.settings_panel.folders["alerts_dir"]
    long = Path("/tmp") / ("a-long-home-folder-" * 6) / ".local/share/MaskWatch/alerts"
    field.set_path(long)
    text = field.edit.text()
    assert text == str(long) and field.edit.toolTip() == text
    assert field.edit.cursorPosition() == len(text)  # Qt keeps the cursor, the end, in view
    assert field.edit.fontMetrics().horizontalAdvance(text) > field.edit.width()


def test_the_window_opens_taller_where_the_screen_has_room(qapp):
    from PySide6.QtCore import QRect

    from app.window import WINDOW_SIZE, first_size

    class Screen:
        def __init__(self, height, width=1920):
            self.height, self.width = height, width

        def availableGeometry(self):  # noqa: N802 - Qt's name
            return QRect(0, 0, self.width, self.height)

    heights = [first_size(Screen(h))[1] for h in (600, 740, 768, 840, 900, 1080)]
    assert heights == [560, 700, 728, 800, 800, 800]
    assert first_size(None) == WINDOW_SIZE == (1180, 700)
    assert first_size(Screen(768, 1024)) == (1024, 728)


def test_the_window_fits_a_small_screen_with_its_panel_in_sight(
    qtbot, pipeline, settings, prefs, face_video
):
    """Opened at 1180 px wide on a 1024 px screen, the panel's buttons lay off its edge;
    the layout's own minimum must stay within such a screen."""
    win = make_window(qtbot, pipeline, settings, prefs, face_video)
    win.resize(1024, 560)
    qtbot.wait(50)
    assert win.width() <= 1024 and win.height() <= 600
    for button in (win.start_button, win.stop_button):
        right = button.mapTo(win, button.rect().topRight()).x()
        assert 0 < right < win.width()
    win.banner.setText("2 faces unmasked for 3 s or more (faces 2 and 3, the last at 0:03)")
    win.banner.show()  # two lines at this width
    qtbot.wait(50)
    assert win.height() <= 600
    assert win.banner.geometry().bottom() < win.video.geometry().top()
    assert win.video.geometry().bottom() < win.stats_panel.geometry().top()


def test_a_message_below_the_tabs_never_squeezes_the_live_rows(qtbot, pipeline, settings, prefs):
    """At the window's first size on a 768-pixel screen, a two-line message under the tabs
    (the end of a clip) took their height and cut the Timing row's text in half; the page
    scrolls instead."""
    from app.window import WINDOW_SIZE

    win = make_window(qtbot, pipeline, settings, prefs, None)
    win.resize(*WINDOW_SIZE)
    win.show()
    qtbot.waitExposed(win)
    win.timing_label.setText(
        "tracked, classify 62 ms, latency 379 ms; 46 stale frames skipped so far"
    )
    win.show_message(
        "Finished: reached the end of clip.mp4. Press Start to play it again or pick "
        "another source.",
        kind="info",
    )
    qtbot.wait(50)
    label = win.timing_label
    assert label.height() >= label.heightForWidth(label.width()) > label.fontMetrics().height()
    page = win.tabs.currentWidget()
    assert page.verticalScrollBar().maximum() > 0  # the rows below are scrolled to
