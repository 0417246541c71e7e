"""Odd images, odd frames and broken video files: converted or refused with a clear message."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, ROOT, clip_frames, fixture_bgr, on_canvas, run_app, write_video
from PIL import Image

from app.images import ImageError, read_rgb
from app.source import SourceError, VideoSource, names_a_recording, no_range_hint


def rgb_fixture() -> Image.Image:
    return Image.open(FIXTURES / "no_mask_1.jpg").convert("RGB")


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA", "CMYK"])
def test_image_modes_become_rgb(tmp_path, mode):
    image = rgb_fixture()
    if mode == "I;16":
        gray = np.asarray(image.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(gray.astype(np.uint16))
    else:
        image = image.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("I;16", "CMYK") else "x.png")
    image.save(path)
    rgb = read_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[:2] == (image.height, image.width)
    assert 40 < rgb.mean() < 220  # the picture survived, not a black or white page


def test_sixteen_bit_keeps_its_contrast(tmp_path):
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "r.png")
    rgb = read_rgb(tmp_path / "r.png")
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255


def test_transparent_pixels_become_white(tmp_path):
    Image.new("RGBA", (4, 4), (10, 20, 30, 0)).save(tmp_path / "t.png")
    assert (read_rgb(tmp_path / "t.png") == 255).all()


@pytest.mark.parametrize("content", [b"", b"GIF89a broken", b"\x89PNG\r\n\x1a\n" + b"\0" * 20])
def test_undecodable_image_is_named(tmp_path, content):
    path = tmp_path / "bad image.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="bad image.png"):
        read_rgb(path)


def test_an_image_that_does_not_fit_on_the_disk_is_named_with_why(tmp_path):
    """A full disk, met as a file size limit: the one error names the file and the reason,
    and no library prints a line of its own (OpenCV's libpng did, and Qt gave no reason)."""
    script = (
        "import resource, signal, sys\n"
        "import numpy as np\n"
        "from app.images import write_image\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))\n"
        "frame = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        write_image(name, frame, quality=90)\n"
        "    except OSError as exc:\n"
        "        print(exc)\n"
    )
    names = [str(tmp_path / "snap.png"), str(tmp_path / "alert.jpg")]
    proc = subprocess.run(
        [sys.executable, "-c", script, *names], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines() == [f"cannot write image {n} (File too large)" for n in names]


def test_fifty_faces_in_one_frame(pipeline):
    face = fixture_bgr("no_mask_1.jpg")
    tile = on_canvas(face, 96, 110)
    frame = np.concatenate([np.concatenate([tile] * 8, axis=1)] * 7, axis=0)
    faces = pipeline.process(frame).faces
    assert len(faces) >= 50
    assert sum(f.label == "no_mask" for f in faces) >= 0.9 * len(faces)


def test_4k_frame_is_detected_at_bounded_cost(pipeline):
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"), 3840, 2160)
    faces = pipeline.process(frame).faces
    assert len(faces) == 1 and faces[0].label == "no_mask"
    x1, y1, x2, y2 = faces[0].box
    assert 1200 < x1 < x2 < 2700 and 200 < y1 < y2 < 2000  # mapped back to 4K pixels


def test_portrait_video_source(tmp_path):
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"), 338, 640)
    video = VideoSource(str(write_video(tmp_path / "p.mp4", [frame] * 3)))
    assert (video.info.width, video.info.height) == (338, 640)
    assert len(list(video.frames())) == 3


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        (b"this is a text file, not a video", "(not a video or image|holds no frames) OpenCV can"),
        (b"", r"clip\.mp4 is an empty file \(0 bytes\)"),
    ],
)
@pytest.mark.parametrize("name", ["clip.mp4", "clip.jpg"])
def test_bad_video_files(tmp_path, content, message, name):
    path = tmp_path / name
    message = message.replace("clip\\.mp4", name.replace(".", "\\."))
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        VideoSource(str(path))


def test_zero_frame_video(tmp_path):
    import cv2

    path = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    writer.release()
    with pytest.raises(SourceError, match=r"empty.mp4 holds no frames .*unfinished recording"):
        VideoSource(str(path))


def test_an_empty_avi_is_an_empty_recording_and_a_sound_file_is_not_a_video(tmp_path):
    import wave

    avi = tmp_path / "empty.avi"  # opens (its header says 0 frames), then yields none
    cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48)).release()
    with pytest.raises(SourceError) as caught:
        list(VideoSource(str(avi)).frames())
    assert "empty.avi holds no frames OpenCV can read (an empty or unfinished" in str(caught.value)
    sound = tmp_path / "sound.avi"  # RIFF like an AVI, but WAVE inside
    with wave.open(str(sound), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    photo = tmp_path / "photo.mp4"  # an HEIF photo's box, as an MP4's
    photo.write_bytes(b"\0\0\0\x18ftypheic" + bytes(100))
    for path in (sound, photo):
        with pytest.raises(SourceError, match=f"{path.name} is not a video or image OpenCV can"):
            VideoSource(str(path))


def test_truncated_video_plays_what_it_has(tmp_path):
    frames = [on_canvas(fixture_bgr("no_mask_1.jpg"))] * 30
    data = write_video(tmp_path / "full.mp4", frames).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        count = len(list(VideoSource(str(cut)).frames()))
    except SourceError as exc:  # the index sits at the end of an mp4: a clear refusal is fine
        assert "cut.mp4 holds no frames" in str(exc) and "unfinished recording" in str(exc)
    else:
        assert 0 < count <= 30


def test_folder_is_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="is a folder"):
        VideoSource(str(tmp_path))


def test_missing_camera():
    with pytest.raises(SourceError, match="no camera at index 7"):
        VideoSource("7")


def test_a_file_named_like_a_camera_index_is_pointed_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames = [on_canvas(fixture_bgr("no_mask_2.jpg"))] * 3
    write_video(tmp_path / "video.mp4", frames, fps=5.0).rename(tmp_path / "7")
    with pytest.raises(SourceError) as refused:
        VideoSource("7")
    assert str(refused.value) == "no camera at index 7 (for the file 7 here, give ./7)"
    assert VideoSource("./7").info.frame_count == 3


def closed_port() -> int:
    """A local port with nothing listening on it (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_stream_says_nothing_listens():
    import time

    port = closed_port()
    start = time.perf_counter()
    with pytest.raises(SourceError, match=f"refused by 127.0.0.1:{port}: nothing is listening"):
        VideoSource(f"rtsp://127.0.0.1:{port}/none")
    assert time.perf_counter() - start < 15


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_silent_stream_times_out_in_the_time_its_message_says(scheme):
    """A server that accepts and never answers must not hang the caller, and the wait the
    message names is the wait there was: over HTTP a second ask after FFmpeg's own 5 s made
    it 10 s, with "within 5 s" said."""
    import re
    import socket
    import time

    from app.source import STREAM_TIMEOUT_MS

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"{scheme}://127.0.0.1:{server.getsockname()[1]}/live"
        start = time.perf_counter()
        with pytest.raises(SourceError) as caught:
            VideoSource(url)
        took = time.perf_counter() - start
    said = re.search(
        r"accepted the connection but sent nothing OpenCV could play within (\d+) s",
        str(caught.value),
    )
    assert said, caught.value
    assert int(said.group(1)) == STREAM_TIMEOUT_MS / 1000
    assert took < STREAM_TIMEOUT_MS / 1000 + 2, took


def test_stream_of_a_web_page_is_not_a_video(tmp_path):
    (tmp_path / "index.html").write_text("<html>not a video</html>")
    with served(tmp_path) as base, pytest.raises(SourceError, match="not with a video"):
        VideoSource(f"{base}/index.html")


def test_a_missing_page_is_named_by_its_http_status(tmp_path):
    with served(tmp_path) as base, pytest.raises(SourceError) as caught:
        VideoSource(f"{base}/gone.mp4?pwd=hunter2")
    said = str(caught.value)
    assert said.endswith("answered HTTP 404 File not found)"), said
    assert "pwd=***" in said and "hunter2" not in said


@contextlib.contextmanager
def served(folder: Path):
    """A local web server for the files in ``folder``; yields its base URL."""
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def test_a_video_file_served_over_http_plays_at_its_own_rate_to_its_end(tmp_path):
    """A recording behind http:// is paced like a file and ends as finished, while a live
    feed (which states no length) is read as fast as it delivers."""
    import threading
    import time

    from app.capture import END_FINISHED, CaptureThread, LatestFrame

    frames = [on_canvas(fixture_bgr("no_mask_2.jpg"))] * 20
    write_video(tmp_path / "clip.mp4", frames, fps=20.0)
    with served(tmp_path) as base:
        source = VideoSource(f"{base}/clip.mp4")
        assert source.kind == "stream" and source.recorded
        assert source.info.frame_count == 20 and source.info.fps == 20.0
        mailbox, stop = LatestFrame(), threading.Event()
        start = time.perf_counter()
        capture = CaptureThread(source, mailbox, stop, should_loop=lambda: False)
        capture.start()
        capture.join(30)
        took = time.perf_counter() - start
    assert not capture.is_alive()
    assert mailbox.end_reason == END_FINISHED
    assert took >= 19 / 20.0 * 0.9  # 20 frames at 20 fps: about a second, not flat out


def test_a_looped_file_replaced_between_laps_is_timed_at_its_own_rate(tmp_path):
    from app.capture import CaptureThread, LatestFrame

    frame = on_canvas(fixture_bgr("no_mask_2.jpg"))
    clip = write_video(tmp_path / "clip.mp4", [frame] * 3, fps=5.0)
    other = write_video(tmp_path / "other.mp4", [frame] * 4, fps=10.0)

    class Every(LatestFrame):
        def __init__(self):
            super().__init__()
            self.items = []

        def put(self, item):
            self.items.append(item)
            super().put(item)

    laps = []

    def should_loop():  # asked at the end of each lap: swap the file once, then stop
        laps.append(len(laps))
        if len(laps) == 1:
            os.replace(other, clip)
        return len(laps) == 1

    mailbox, stop = Every(), threading.Event()
    capture = CaptureThread(VideoSource(str(clip)), mailbox, stop, should_loop=should_loop)
    capture.start()
    capture.join(30)
    times = [round(item.time_s, 3) for item in mailbox.items]
    assert times == [0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9]  # 3 frames at 5 fps, 4 at 10 fps


def test_a_gif_served_over_http_is_a_recording_though_it_states_no_length(tmp_path):
    from app.capture import END_FINISHED, CaptureThread, LatestFrame

    shades = [Image.new("RGB", (64, 48), (20 * i, 0, 0)) for i in range(6)]
    shades[0].save(tmp_path / "hall.gif", save_all=True, append_images=shades[1:], duration=100)
    with served(tmp_path) as base:
        source = VideoSource(f"{base}/hall.gif")
        assert source.kind == "stream" and source.recorded and source.info.frame_count == 0
        mailbox, stop = LatestFrame(), threading.Event()
        capture = CaptureThread(source, mailbox, stop, should_loop=lambda: False)
        capture.start()
        capture.join(30)
    assert not capture.is_alive() and mailbox.end_reason == END_FINISHED
    assert source.time_s() == pytest.approx(0.5)  # the sixth frame, at 10 fps: media time
    assert not names_a_recording(f"{base}/video.mjpg") and not names_a_recording("rtsp://h/a.mp4")


def test_a_big_mp4_from_a_server_without_ranges_names_the_cause(tmp_path):
    """An mp4 whose index sits at its end (as OpenCV writes it) cannot be read from a server
    that ignores range requests, as Python's own http.server does: the message says why."""
    noise = np.random.default_rng(0).integers(0, 255, (40, 240, 320, 3), dtype=np.uint8)
    clip = write_video(tmp_path / "big.mp4", list(noise), fps=10.0)
    assert clip.read_bytes().rfind(b"moov") > clip.stat().st_size // 2
    with served(tmp_path) as base, pytest.raises(SourceError) as refused:
        VideoSource(f"{base}/big.mp4")
    said = str(refused.value)
    assert said.startswith(f"stream {base}/big.mp4 delivers no frames (the server ignores HTTP")
    assert "ffmpeg -movflags +faststart" in said
    with served(tmp_path) as base:
        assert no_range_hint(f"{base}/big.mp4").startswith(" (the server ignores")
        assert no_range_hint(f"{base}/big.gif") == ""  # not a container that seeks


def with_rotation_metadata(path, degrees_cw: int = 90):
    """Set the mp4 track's display matrix to a clockwise rotation, as phones record."""
    import struct

    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    offset = at + 8 + (32 if data[at + 4] == 1 else 20) + 16
    assert degrees_cw == 90
    data[offset : offset + 36] = struct.pack(">9i", 0, 1 << 16, 0, -1 << 16, 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))
    return path


def test_rotated_video_boxes_land_on_the_displayed_face(tmp_path, pipeline):
    import cv2

    upright = on_canvas(fixture_bgr("no_mask_1.jpg"), 360, 480)
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    path = with_rotation_metadata(write_video(tmp_path / "phone.mp4", [stored] * 3))
    video = VideoSource(str(path))
    assert (video.info.width, video.info.height) == (360, 480)
    frame = video.read()
    expected = pipeline.process(upright).faces[0].box
    faces = pipeline.process(frame).faces
    assert len(faces) == 1 and faces[0].label == "no_mask"
    assert all(abs(a - b) <= 6 for a, b in zip(faces[0].box, expected))


def test_a_cut_off_image_is_searched_with_a_warning(tmp_path, caplog):
    data = (FIXTURES / "maksssksksss129.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="app.source"):
        frames = list(VideoSource(str(cut)).frames())
    assert len(frames) == 1 and frames[0].shape[:2] == (295, 400)
    assert "cut.jpg is damaged" in caplog.text and "truncated" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="app.source"):
        assert len(list(VideoSource(str(FIXTURES / "maksssksksss129.jpg")).frames())) == 1
    assert caplog.text == ""


def test_every_frame_of_an_animated_gif_is_read(tmp_path):
    still = Image.open(FIXTURES / "maksssksksss129.jpg").convert("RGB")
    gif = tmp_path / "anim.gif"
    flipped = still.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    still.save(gif, save_all=True, append_images=[flipped, still], duration=200, loop=0)
    source = VideoSource(str(gif))
    frames = list(source.frames())
    assert len(frames) == 3 and source.info.fps == 5.0
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() > 10  # really flipped


def test_a_stream_that_stalls_ends_the_headless_run_with_its_outputs(tmp_path):
    """An MJPEG stream over HTTP that sends 8 frames, then keeps the connection open silently:
    the run must not hang; it warns, and the 8 frames' events are written."""
    import socket
    import threading

    from conftest import run_app

    jpeg = cv2.imencode(".jpg", on_canvas(fixture_bgr("no_mask_1.jpg")))[1].tobytes()
    part = b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
    done = threading.Event()

    def serve(server):
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=f\r\n\r\n"
        )
        for _ in range(8):
            conn.sendall(part + jpeg + b"\r\n")
        done.wait(120)
        conn.close()

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        threading.Thread(target=serve, args=(server,), daemon=True).start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/live"
        events = tmp_path / "events.jsonl"
        proc = run_app("--source", url, "--events", events, timeout=120)
        done.set()
    assert proc.returncode == 0, proc.stderr
    assert f"stream {url} stopped delivering frames after 8" in proc.stderr
    assert len(events.read_text().splitlines()) == 8


def test_an_image_over_the_decompression_bomb_limit_is_refused_in_one_line(
    tmp_path, monkeypatch, recwarn
):
    """A few kilobytes of PNG may claim hundreds of millions of pixels; Pillow refuses them
    with an error that is not an OSError. The limit is lowered so a small image stands in."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    bomb, big = tmp_path / "bomb.png", tmp_path / "big.png"
    Image.new("1", (300, 300), 1).save(bomb)  # 90,000 pixels: over twice the limit
    Image.new("RGB", (120, 120), (90, 90, 90)).save(big)  # 14,400: over it, not twice
    with pytest.raises(ImageError, match="cannot read image .*bomb.png: too large"):
        read_rgb(bomb)
    with pytest.raises(SourceError, match="image .*bomb.png is too large to read"):
        VideoSource(str(bomb))
    assert len(list(VideoSource(str(big)).frames())) == 1
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_a_missing_relative_file_says_which_folder_it_was_looked_for_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError) as refused:
        VideoSource("clips/door.mp4")
    assert str(refused.value) == (
        f"video file clips/door.mp4 not found (looked for in {tmp_path}; give its full path "
        "if it lies elsewhere)"
    )
    missing = tmp_path / "door.mp4"
    with pytest.raises(SourceError) as refused:
        VideoSource(str(missing))
    assert str(refused.value) == f"video file {missing} not found"


def test_a_file_named_from_home_is_opened(tmp_path, monkeypatch):
    """The window's file box takes ~/clip.mp4 as a shell would (no shell expands it there)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copy(FIXTURES / "no_mask_1.jpg", tmp_path / "face.jpg")
    with VideoSource("~/face.jpg") as source:
        assert source.spec == str(tmp_path / "face.jpg") and source.read() is not None


def test_odd_source_names_get_a_plain_message():
    import time

    from app.source import describe, why_stream_failed

    assert describe("²") == "file" and describe("12") == "camera" and describe("-1") == "camera"
    with pytest.raises(SourceError, match="video file ² not found"):
        VideoSource("²")
    start = time.perf_counter()
    for url, message in [
        ("http://[::1", r"stream URL http://\[::1 is malformed \(Invalid IPv6 URL\)"),
        ("rtsp://host:abc/x", "is malformed .*'abc'"),
    ]:
        with pytest.raises(SourceError, match=message):
            VideoSource(url)
    assert time.perf_counter() - start < 2  # refused before trying to connect
    assert why_stream_failed("http://127.0.0.1:0/x", 0.1) == (
        "port 0 in the URL is not a port a server can listen on"
    )


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_photo_with_exif_orientation_is_read_upright(tmp_path, orientation):
    """Stored sideways with an Orientation tag, as phones do: read as a viewer shows it."""
    upright = rgb_fixture().resize((120, 90))
    stored = (
        upright.transpose(
            {
                1: None,
                2: Image.Transpose.FLIP_LEFT_RIGHT,
                3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM,
                5: Image.Transpose.TRANSPOSE,
                6: Image.Transpose.ROTATE_90,
                7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_270,
            }[orientation]
        )
        if orientation > 1
        else upright
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"phone{orientation}.jpg"
    stored.save(path, quality=98, exif=exif)
    want = np.asarray(upright, dtype=np.float32)
    for got in (read_rgb(path), VideoSource(str(path)).read()[:, :, ::-1]):
        assert got.shape == (90, 120, 3)
        assert np.abs(got.astype(np.float32) - want).mean() < 4


def test_a_sideways_phone_photo_gets_its_faces_found(tmp_path, pipeline):
    scene = Image.open(FIXTURES / "maksssksksss129.jpg").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter anticlockwise; viewers turn it back
    path = tmp_path / "sideways.png"  # lossless: the upright pixels are the fixture's own
    scene.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    upright = pipeline.process(cv2.cvtColor(np.asarray(scene), cv2.COLOR_RGB2BGR)).faces
    video = VideoSource(str(path))
    assert (video.info.width, video.info.height) == scene.size
    frame = video.read()
    assert np.array_equal(frame[:, :, ::-1], np.asarray(scene))
    faces = pipeline.process(frame).faces
    assert len(upright) >= 2 and [f.box for f in faces] == [f.box for f in upright]


def test_a_cut_off_video_says_so_and_keeps_what_it_read(tmp_path, caplog):
    frames = [on_canvas(fixture_bgr(n)) for n in ("no_mask_1.jpg", "mask_1.jpg")] * 10
    path = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for frame in frames:
        writer.write(frame)
    writer.release()
    whole = VideoSource(str(path))
    assert len(list(whole.frames())) == 20 and whole.cut_off_note() is None
    cut = tmp_path / "cut.avi"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    video = VideoSource(str(cut))
    read = len(list(video.frames()))
    assert 0 < read < 18
    assert video.cut_off_note() == (
        f"{cut} looks cut off: only {read} of the 20 frames its header lists could be read"
    )
    proc = run_app("--source", cut, "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "looks cut off" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == read

    from app.config import PipelineConfig
    from app.pipeline import Pipeline
    from app.tracking import TrackingPipeline
    from training.evaluate_clips import clip_shares

    caplog.clear()
    pipeline = TrackingPipeline(Pipeline(PipelineConfig(device="cpu")))
    row = clip_shares(pipeline, cut, "no_mask", False, None)
    assert row["frames"] == read and "looks cut off" in caplog.text  # the evaluation says so


def test_a_file_url_with_escapes_and_an_upper_case_scheme_are_understood(tmp_path):
    path = write_video(tmp_path / "door cam.mp4", [on_canvas(fixture_bgr("mask_1.jpg"))] * 3)
    video = VideoSource("file://" + str(path).replace(" ", "%20"))
    assert video.spec == str(path) and len(list(video.frames())) == 3
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(SourceError, match=f"stream http://127.0.0.1:{port}/cam could not be"):
        VideoSource(f"HTTP://127.0.0.1:{port}/cam")  # FFmpeg is given the scheme it knows


def test_a_name_opencv_would_read_as_a_sequence_is_read_as_itself(tmp_path):
    """OpenCV takes img%02d.jpg for img01.jpg, img02.jpg...: the named file must be read."""
    named = tmp_path / "img%02d.jpg"
    cv2.imwrite(str(named), on_canvas(fixture_bgr("no_mask_1.jpg")))
    for sibling in ("img01.jpg", "img02.jpg"):
        cv2.imwrite(str(tmp_path / sibling), on_canvas(fixture_bgr("mask_1.jpg")))
    video = VideoSource(str(named))
    frames = list(video.frames())
    video.close()
    assert len(frames) == 1
    assert np.abs(frames[0].astype(int) - cv2.imread(str(named)).astype(int)).mean() < 2
    assert not list(Path(tempfile.gettempdir()).glob(f"maskwatch-source-*/{named.name}"))


def test_a_file_name_that_is_not_utf8_is_refused_not_crashed_on(tmp_path):
    name = os.fsdecode(bytes(tmp_path) + b"/bad\xff.mp4")
    made = write_video(tmp_path / "good.mp4", [on_canvas(fixture_bgr("mask_1.jpg"))] * 2)
    made.rename(name)  # OpenCV cannot even write such a name
    with pytest.raises(SourceError, match=r"bad\\xff\.mp4 is not valid UTF-8; rename the file"):
        VideoSource(name)
    proc = run_app("--source", FIXTURES / "mask_1.jpg", "--events", name + ".jsonl")
    assert proc.returncode == 2 and "--events" in proc.stderr
    assert "not valid UTF-8" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_jfif_photo_is_turned_upright_too(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "download.jfif"
    rgb_fixture().resize((120, 90)).transpose(Image.Transpose.ROTATE_90).save(
        path, "JPEG", quality=98, exif=exif
    )
    assert VideoSource(str(path)).info.width == 120


def test_pillow_warnings_become_one_line_that_names_the_image(tmp_path, caplog):
    # An EXIF block whose one tag points past its end: Pillow warns and reads the pixels.
    bad = tmp_path / "bad exif.jpg"
    tag = b"\x0f\x01\x02\x00\x40\x00\x00\x00\xf0\x00\x00\x00"  # Make, 64 bytes at offset 240
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00" + tag + b"\x00\x00\x00\x00"
    Image.fromarray(fixture_bgr("no_mask_1.jpg")[:, :, ::-1].copy()).save(bad, exif=exif)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        assert read_rgb(bad).shape[2] == 3
    assert not escaped
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [f"{bad}: Tag data larger than file. Skipping tag 271"]
    proc = run_app("--source", bad, "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0 and "site-packages" not in proc.stderr, proc.stderr


def test_a_url_of_another_kind_is_not_called_a_missing_file():
    with pytest.raises(SourceError, match=r"ftp:// is not a stream MaskWatch can read; use a"):
        VideoSource("ftp://127.0.0.1/clip.mp4")


@pytest.mark.parametrize("shape", [(1000, 1), (1, 1000), (2000, 2)])
def test_a_very_thin_picture_is_processed_not_crashed_on(tmp_path, shape):
    # Scaled for optical flow, the short side used to round to no pixels at all.
    still = tmp_path / "thin.png"
    cv2.imwrite(str(still), np.full((*shape, 3), 128, np.uint8))
    proc = run_app("--source", still, "--events", tmp_path / "e.jsonl", "--detect-every", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1 frame, no face, ")


def test_a_stream_password_never_appears_in_a_message():
    from app.source import shown_source

    with socket.socket() as probe:  # a port on this machine that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"rtsp://admin:S3cret@127.0.0.1:{port}/live"
    with pytest.raises(SourceError) as refused:
        VideoSource(url)
    assert "S3cret" not in str(refused.value) and "admin:***@127.0.0.1" in str(refused.value)
    assert shown_source("http://cam.local/a@b") == "http://cam.local/a@b"
    assert shown_source("clip:1@home.mp4") == "clip:1@home.mp4"  # a file, shown as it is


def test_a_file_name_too_long_for_the_file_system_is_named_once(tmp_path):
    name = str(tmp_path / ("a" * 300 + ".mp4"))
    with pytest.raises(SourceError) as caught:
        VideoSource(name)
    assert str(caught.value) == f"video file {name} cannot be opened: file name too long"


def test_a_live_feed_is_timed_by_the_clock_a_recording_by_its_frame_rate(tmp_path):
    """A live stream's stated rate is often wrong (MJPEG over HTTP says 25 fps whatever it
    sends), so alerts and statistics follow the clock, as in the window."""
    import time

    video = write_video(tmp_path / "v.mp4", [on_canvas(fixture_bgr("no_mask_2.jpg"))] * 3)
    recording = VideoSource(str(video))
    assert [recording.read() is not None and recording.time_s() for _ in range(3)] == [
        0.0,
        0.1,
        0.2,
    ]
    live = VideoSource(str(video))
    live.recorded = False  # as a camera or a live stream is
    live.read()
    time.sleep(0.5)
    live.read()
    assert 0.45 < live.time_s() < 2.0  # not the 0.1 s its stated 10 fps would give


def test_titles_and_messages_never_show_a_login():
    from app.source import shown_source, source_title

    assert source_title("http://admin:hunter2@127.0.0.1:8766") == "http://admin:***@127.0.0.1:8766"
    assert source_title("/videos/clip.mp4") == "clip.mp4" and source_title("0") == "camera 0"
    shown = shown_source("http://cam/video.cgi?user=admin&pwd=hunter2&token=t0k&ch=1")
    assert shown == "http://cam/video.cgi?user=admin&pwd=***&token=***&ch=1"
    assert (
        shown_source("http://bob:se@cret@127.0.0.1:9/x.mp4") == "http://bob:***@127.0.0.1:9/x.mp4"
    )
    assert shown_source("rtsp://a:b@h/live#pass=hunter4") == "rtsp://a:***@h/live#pass=***"


def test_a_grey_picture_is_told_from_a_colour_one_even_after_jpeg(tmp_path):
    from app.images import looks_grey

    colour = fixture_bgr("no_mask_1.jpg")
    grey = cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    cv2.imwrite(str(tmp_path / "grey.jpg"), grey, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert not looks_grey(colour) and looks_grey(grey)
    assert looks_grey(cv2.imread(str(tmp_path / "grey.jpg"))) and looks_grey(grey[..., 0])


def test_a_frame_too_dark_or_too_flat_tells_nothing_about_colour():
    from app.images import looks_grey

    colour = on_canvas(fixture_bgr("no_mask_1.jpg"))
    grey = cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert looks_grey(np.zeros_like(colour)) is None and looks_grey(np.full_like(grey, 110)) is None
    assert looks_grey((grey * 0.2).astype(np.uint8)) is None  # a fade: too dark to tell
    assert looks_grey((colour * 0.6).astype(np.uint8)) is False  # dim, but colour all the same
    assert looks_grey((grey * 0.6).astype(np.uint8)) is True


def test_colour_is_looked_at_about_once_a_second_and_says_each_change_once():
    from app.images import ColourWatch

    colour = on_canvas(fixture_bgr("no_mask_1.jpg"))
    grey = cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    black = np.zeros_like(colour)
    clip = [black] * 5 + [colour] * 10 + [grey] * 10 + [colour] * 10 + [black] * 10  # 5 fps
    watch = ColourWatch()
    changes = [(i / 5, c) for i, f in enumerate(clip) if (c := watch.update(f, i / 5)) is not None]
    assert changes == [(3.0, True), (5.0, False)]
    assert watch.grey_turns == 1 and watch.update(grey, 8.6) is None  # looked at 8.0
    assert watch.update(grey, 0.0) is True  # media time went back (a new lap): look at once


def test_headless_gives_no_grey_note_for_a_colour_clip_that_opens_on_black(tmp_path):
    clip = write_video(tmp_path / "fade.mp4", clip_frames(("black", 5), ("colour", 10)), fps=5)
    proc = run_app("--source", clip, "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0 and "colour" not in proc.stderr, proc.stderr


def test_headless_says_when_a_colour_clip_turns_grey_and_back(tmp_path):
    frames = clip_frames(("colour", 10), ("grey", 10), ("colour", 5))  # day, night, day
    clip = write_video(tmp_path / "dusk.mp4", frames, fps=5)
    proc = run_app("--source", clip, "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "colour" in line]
    assert len(said) == 2, proc.stderr
    assert "from 2.0 s on, the picture has no colour (an infrared or night camera?)" in said[0]
    assert said[1].endswith("from 4.0 s on, the picture has colour again")


def test_headless_warns_once_that_a_grey_source_is_weak_ground(tmp_path):
    from PIL import Image

    Image.open(FIXTURES / "no_mask_1.jpg").convert("L").save(tmp_path / "night.png")
    proc = run_app("--source", tmp_path / "night.png", "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("the picture has no colour (an infrared or night camera?)") == 1
    proc = run_app("--source", FIXTURES / "no_mask_1.jpg", "--events", tmp_path / "c.jsonl")
    assert proc.returncode == 0 and "no colour" not in proc.stderr, proc.stderr


def test_a_damaged_image_source_gets_one_line_and_no_opencv_log(tmp_path):
    """OpenCV logs its own error for a GIF header with nothing after it; the app's line is
    the one the user should read (the environment is the user's: no OpenCV setting in it)."""
    gif = tmp_path / "bad.gif"
    gif.write_bytes(b"GIF89a")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--headless", "--quiet", "--source", str(gif)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"maskwatch: error: {gif} is not a video or image OpenCV can read"
    ]
