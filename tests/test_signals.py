"""SIGTERM and SIGHUP (a service stopped, a terminal closed) end a run as Ctrl-C does: the
headless app keeps no partial output and no folder it made; the window saves its recording.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import cv2
import pytest
from conftest import ROOT, fixture_bgr, on_canvas, start_app, write_video

WAIT_S = 120  # model loading and inference are slow on two shared cores


def wait_for(folder, pattern):
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        found = list(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"nothing matched {folder / pattern} within {WAIT_S} s")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    frames = [on_canvas(fixture_bgr("no_mask_1.jpg"))] * 300
    return write_video(tmp_path_factory.mktemp("signals") / "long.mp4", frames, fps=25)


@pytest.mark.parametrize(
    "signum, said",
    [
        (signal.SIGTERM, "terminated (SIGTERM)"),
        (signal.SIGHUP, "hung up (SIGHUP)"),
        (signal.SIGINT, "interrupted"),
    ],
)
def test_a_stop_signal_keeps_no_partial_output_and_no_folder(tmp_path, long_video, signum, said):
    run = tmp_path / "run"
    run.mkdir()
    proc = start_app(
        "--source", long_video, "--output", run / "o.mp4", "--events", run / "e.jsonl",
        "--stats", run / "s.csv", "--alerts", run / "al", "--alert-delay", "0",
        "--snapshots", run / "sn", "--snapshot-every", "2",
    )  # fmt: skip
    wait_for(run / "sn", ".*.partial-*.png")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1] == f"maskwatch: {said}; no partial output was kept"
    assert list(run.iterdir()) == []


def test_a_run_started_under_nohup_outlives_the_terminal(tmp_path, long_video):
    """nohup starts a command with SIGHUP ignored; the run keeps it so and ends whole."""
    events = tmp_path / "e.jsonl"
    argv = ["--headless", "--quiet", "--source", long_video, "--events", events]
    proc = subprocess.Popen(
        ["nohup", sys.executable, "-m", "app", *map(str, argv), "--max-frames", "120"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(tmp_path, ".e.partial-*.jsonl")
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    assert len(events.read_text().splitlines()) == 120


def test_sigterm_to_the_window_saves_its_recording(tmp_path, long_video):
    """The window, started by the real command line under nohup; a frame shown turns
    recording on (the R key offscreen), then SIGHUP, which nohup asks to ignore, and SIGTERM
    arrive while it records."""
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "record.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import app.window as window
            from app.cli import main

            shown = window.MainWindow._on_frame

            def record_once_shown(self, image, stats):
                shown(self, image, stats)
                if self.recorder is None and self.record_button.isEnabled():
                    self.record_button.setChecked(True)

            window.MainWindow._on_frame = record_once_shown
            sys.exit(main(sys.argv[1:]))
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        ["nohup", sys.executable, str(script), "--source", str(long_video), "--device", "cpu"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    recordings = home / "Videos" / "MaskWatch"
    wait_for(recordings, ".maskwatch-*.partial-*.mp4")
    proc.send_signal(signal.SIGHUP)  # started under nohup: the terminal closing is no stop
    time.sleep(1.0)  # a few frames into the recording
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM received; closing the window" in err
    names = [p.name for p in recordings.iterdir()]
    assert len(names) == 1 and names[0].startswith("maskwatch-") and "partial" not in names[0]
    video = cv2.VideoCapture(str(recordings / names[0]))
    assert video.read()[0] and video.get(cv2.CAP_PROP_FRAME_COUNT) >= 1
