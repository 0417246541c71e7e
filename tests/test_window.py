"""The window, offscreen: it plays a video written from a fixture, switches models live,
and turns a missing file, a missing camera or broken weights into a message, not a crash.
"""

import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from conftest import ROOT, clip_frames, fixture_bgr, on_canvas, write_video  # noqa: E402

from app.config import PipelineConfig  # noqa: E402
from app.fps_meter import FpsMeter  # noqa: E402
from app.overlay import COLOURS  # noqa: E402
from app.window import MainWindow  # noqa: E402
from app.worker import CapturedFrame, LatestFrame  # noqa: E402

# Inference is slow here (two cores shared with training), so waits are generous upper bounds.
FRAME_TIMEOUT_MS = 45_000
LOAD_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """Four seconds of one unmasked face, 640x480 at 5 fps."""
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    return write_video(tmp_path_factory.mktemp("window") / "no_mask.mp4", [frame] * 20, fps=5)


@pytest.fixture
def window(qtbot, pipeline):
    win = MainWindow(PipelineConfig(device="cpu"), pipeline=pipeline, autostart=False)
    qtbot.addWidget(win)
    win.show()
    shown = []
    win.frame_displayed.connect(lambda image, stats: shown.append((image, stats)))
    win.shown = shown
    yield win
    win.close()
    pipeline.use("student")


def capture_threads():
    return [t for t in threading.enumerate() if t.name == "maskwatch-capture" and t.is_alive()]


def test_plays_file_to_the_end_with_boxes_counts_and_fps(qtbot, window, face_video):
    window.picker.set_spec(str(face_video))
    window.start()
    assert window.is_playing
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)

    assert len(window.shown) >= 2
    for _, stats in window.shown:
        assert stats.model == "student"
        assert [face.label for face in stats.faces] == ["no_mask"]
    image, stats = window.shown[-1]
    x1, y1, x2, y2 = stats.faces[0].box
    blue, green, red = COLOURS["no_mask"]
    edge = image.pixelColor(x1, (y1 + y2) // 2)
    assert (edge.red(), edge.green(), edge.blue()) == (red, green, blue)
    assert window.no_mask_label.text() == "1" and window.mask_label.text() == "0"
    assert float(window.fps_label.text()) > 0
    assert window.message.startswith("Finished")
    assert window.start_button.isEnabled() and not window.stop_button.isEnabled()
    assert capture_threads() == []


def test_teacher_switch_takes_effect_without_restart(qtbot, window, face_video):
    window.picker.set_spec(str(face_video))
    window.loop_check.setChecked(True)
    window.start()
    worker = window._worker
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    assert window.shown[0][1].model == "student"

    window.model_radios["teacher"].click()
    qtbot.waitUntil(lambda: window.shown[-1][1].model == "teacher", timeout=FRAME_TIMEOUT_MS)
    first_teacher = next(i for i, (_, s) in enumerate(window.shown) if s.model == "teacher")
    qtbot.waitUntil(lambda: len(window.shown) > first_teacher + 1, timeout=FRAME_TIMEOUT_MS)
    assert {s.model for _, s in window.shown[first_teacher:]} == {"teacher"}
    assert window._worker is worker and window.model_label.text() == "teacher"

    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert window._worker is None and capture_threads() == []
    assert window.message == ""


def test_missing_file_is_a_message_and_the_window_survives(qtbot, window, tmp_path):
    missing = tmp_path / "gone.mp4"
    window.picker.set_spec(str(missing))
    window.start()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert "not found" in window.message and str(missing) in window.message
    assert window.isVisible() and window.start_button.isEnabled()
    assert window.shown == []


def test_a_source_name_that_is_not_utf8_is_named_as_given(qtbot, pipeline, face_video):
    # Qt drops bytes that are not UTF-8, which would make the message name another file.
    name = os.fsdecode(bytes(face_video.parent) + b"/caf\xe9.mp4")
    win = MainWindow(PipelineConfig(device="cpu"), source=name, pipeline=pipeline, autostart=False)
    qtbot.addWidget(win)
    win.show()
    expected = f"The file name {face_video.parent}/caf\\xe9.mp4 is not valid UTF-8"
    assert win.message.startswith(expected)
    win.clear_message()
    win.start()
    assert win.message.startswith(expected) and not win.is_playing
    win.picker.file_edit.setText(str(face_video))
    assert win.picker.problem() is None
    win.close()


def test_stop_while_a_stream_is_still_opening_is_no_error(qtbot, window):
    import socket

    with socket.socket() as server:  # listens, never answers: the open waits for its timeout
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        window.picker.set_spec(f"http://127.0.0.1:{server.getsockname()[1]}/live")
        window.start()
        qtbot.wait(300)
        window.stop()
        qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert window.message == "" and window.statusBar().currentMessage() == "Stopped"


def test_a_file_name_ending_in_a_space_is_kept_as_it_is(window, face_video, tmp_path):
    spaced = tmp_path / "clip.mp4 "
    spaced.write_bytes(face_video.read_bytes())
    window.picker.file_radio.setChecked(True)
    window.picker.file_edit.setText(str(spaced))
    assert window.picker.spec() == str(spaced)
    window.picker.file_edit.setText(f"  {face_video}  ")  # pasted with spaces around it
    assert window.picker.spec() == str(face_video)
    for quote in "\"'":  # pasted as "Copy as path" gives it
        window.picker.file_edit.setText(f" {quote}{face_video}{quote}")
        assert window.picker.spec() == str(face_video)
    quoted = tmp_path / "'odd'.mp4"  # a real name in quotes keeps them
    quoted.write_bytes(b"")
    window.picker.file_edit.setText(str(quoted))
    assert window.picker.spec() == str(quoted)


def test_a_malformed_url_is_a_message_with_the_url_as_typed(qtbot, window, caplog):
    window.picker.set_spec("http://[::1")
    window.start()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert window.message.startswith("Stream URL http://[::1 is malformed (Invalid IPv6 URL)")
    assert "Traceback" not in caplog.text
    window._on_failed("/data/cam.mp4 could not be opened: codec missing")
    assert window.message.startswith("/data/cam.mp4 could not be opened")


def test_command_line_values_beyond_the_window_controls_are_clamped(caplog):
    from app.preferences import MAX_ALERT_DELAY_S, Preferences
    from app.window_flags import WindowFlags, apply_command_line

    prefs = Preferences.defaults(temporary=True)
    apply_command_line(prefs, WindowFlags(device="cpu", alert_delay_s=1e9, min_face=4))
    assert prefs.alert_delay_s == MAX_ALERT_DELAY_S and prefs.min_face_size == 12
    assert "--alert-delay 1e+09 is outside the window's range 0-600 s; using 600" in caplog.text
    assert "--min-face 4 is outside the window's range 12-200 px; using 12" in caplog.text
    apply_command_line(prefs, WindowFlags(device="cpu", alert_delay_s=2.5))
    assert prefs.alert_delay_s == 2.5


def test_no_camera_offers_a_file_and_start_works_again(qtbot, window, face_video):
    window.picker.set_spec("99")
    window.start()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert "No camera found at index 99" in window.message
    assert window.picker.file_radio.isChecked() and window.isVisible()
    window.start()  # no file chosen yet: said, in the panel and the status bar alike
    assert window.message == 'Choose a video file with "Open file..." first.'
    assert window.statusBar().currentMessage() == window.message

    window.picker.file_edit.setText(str(face_video))
    window.start_button.click()
    qtbot.waitUntil(lambda: len(window.shown) >= 1, timeout=FRAME_TIMEOUT_MS)
    assert window.message == ""
    assert window.shown[0][1].faces[0].label == "no_mask"


@pytest.mark.parametrize("index", ["-1", "1000", "99999999999999999999"])
def test_a_camera_index_out_of_range_is_said_and_no_other_camera_opens(window, index):
    window.picker.set_spec(index)
    window.start()
    assert not window.is_playing
    assert f"There is no camera index {index}: indices run from 0 to 999" in window.message
    assert window.picker.spec() == index  # kept as given, not clamped to another camera
    window.picker.camera_spin.setValue(2)
    assert window.picker.spec() == "2" and window.picker.problem() is None


def test_broken_weights_fall_back_to_the_other_model(
    qtbot, tmp_path, settings, prefs, caplog, face_video
):
    from app.preferences import Preferences

    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    prefs.model = "student"
    win = MainWindow(  # plays at once, as python -m app --source does
        PipelineConfig(device="cpu", model="student"),
        {"student": broken},
        source=str(face_video),
        settings=settings,
        prefs=prefs,
    )
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: win.is_playing, timeout=LOAD_TIMEOUT_MS)
    assert win.pipeline.active == "teacher"
    assert win.model_radios["teacher"].isChecked()
    # The start that follows loading keeps the message: the fallback holds all session.
    assert "student model could not be loaded" in win.message and "broken.pt" in win.message
    logged = [r.getMessage() for r in caplog.records if r.name == "app.window"]
    assert " ".join(win.message.split("\n")) in logged  # the log has it on one line
    win.stop()
    qtbot.waitUntil(lambda: not win.is_playing, timeout=LOAD_TIMEOUT_MS)
    win.start()
    assert "student model could not be loaded" in win.message
    qtbot.waitUntil(lambda: not win.is_playing, timeout=FRAME_TIMEOUT_MS)  # to the clip's end
    finished, *held = win.message.split("\n")  # the end is said; the notice still holds
    assert finished.startswith("Finished") and "student model could not be loaded" in held[0]

    win.model_radios["student"].click()
    qtbot.waitUntil(lambda: win._switcher is None, timeout=LOAD_TIMEOUT_MS)
    assert win.pipeline.active == "teacher" and win.model_radios["teacher"].isChecked()
    assert "student model could not be loaded" in win.message
    assert win.statusBar().currentMessage() == "Still using the teacher model"
    # The file mended, the student loads: its notice goes; the clip's end is still news.
    broken.write_bytes((ROOT / "models" / "student.pt").read_bytes())
    win.model_radios["student"].click()
    qtbot.waitUntil(lambda: win._switcher is None, timeout=LOAD_TIMEOUT_MS)
    assert win.pipeline.active == "student" and win.message == finished
    win.close()
    # The fallback is not the user's choice: the next start tries the student again.
    assert Preferences.load(settings).model == "student"


def test_mailbox_keeps_only_the_newest_frame():
    mailbox = LatestFrame()
    for index in range(3):
        mailbox.put(CapturedFrame(index, 0.0, None))
    assert mailbox.take(0.0).index == 2 and mailbox.dropped == 2
    assert mailbox.take(0.0) is None and not mailbox.drained
    mailbox.close("finished")
    assert mailbox.drained


def test_fps_meter_measures_display_rate():
    meter = FpsMeter()
    assert meter.tick(10.0) == 0.0
    for step in range(1, 5):
        rate = meter.tick(10.0 + step * 0.25)
    assert rate == pytest.approx(4.0)


def test_a_grey_source_is_said_once_a_run(qtbot, window, face_video, tmp_path):
    import cv2

    grey = cv2.cvtColor(cv2.cvtColor(on_canvas(fixture_bgr("no_mask_1.jpg")), 6), 8)  # BGR>G>BGR
    night = write_video(tmp_path / "night.mp4", [grey] * 10, fps=5)
    window.picker.set_spec(str(night))
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 2, timeout=FRAME_TIMEOUT_MS)
    assert window.message.startswith("The picture has no colour (an infrared or night camera?)")
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    window.picker.set_spec(str(face_video))  # colour: nothing said
    window.start()
    qtbot.waitUntil(lambda: len(window.shown) >= 4, timeout=FRAME_TIMEOUT_MS)
    assert window.message == ""
    window.stop()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)


def play_clip(qtbot, window, path) -> list[tuple[float, bool]]:
    """Play ``path`` to its end; (media time, grey note on show) after each frame shown."""
    seen = []
    note = "The picture has no colour (an infrared or night camera?)"
    window.frame_displayed.connect(
        lambda _, stats: seen.append((stats.time_s, note in window.message))
    )
    window.picker.set_spec(str(path))
    window.start()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=FRAME_TIMEOUT_MS)
    assert window.message.startswith("Finished"), window.message
    return seen


def test_a_colour_clip_that_opens_on_black_gets_no_grey_note(qtbot, window, tmp_path):
    fade = write_video(tmp_path / "fade.mp4", clip_frames(("black", 5), ("colour", 10)), fps=5)
    seen = play_clip(qtbot, window, fade)
    assert seen and not any(grey for _, grey in seen), seen


def test_the_grey_note_stands_while_the_picture_has_no_colour(qtbot, window, tmp_path):
    frames = clip_frames(("colour", 10), ("grey", 15), ("colour", 10))  # day, night, day
    seen = play_clip(qtbot, window, write_video(tmp_path / "dusk.mp4", frames, fps=5))
    shown = [time_s for time_s, grey in seen if grey]  # frames are grey from 2.0 to 5.0 s
    assert shown and shown[0] >= 2.0, seen
    assert shown == [time_s for time_s, _ in seen if shown[0] <= time_s <= shown[-1]], seen
    assert not seen[-1][1], seen  # colour again at the end: the note is gone
