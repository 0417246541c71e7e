"""Alerts and statistics without Qt: hand-made face sequences, then headless end to end."""

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import signal
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_app  # noqa: E402

from app.alerts import ALERTS_FILE, AlertLog, AlertMonitor
from app.pipeline import Face
from app.recording import VideoRecorder
from app.stats import FaceStats, is_masked

ROOT = Path(__file__).resolve().parents[1]
BOX = (100, 80, 180, 180)


def face(label: str, track_id: int | None = 1, box=BOX) -> Face:
    return Face(box, label, 0.9, 0.99, track_id)


def feed(monitor: AlertMonitor, frames, step_s: float = 0.5, frame=None):
    """Feed one list of faces per frame, ``step_s`` apart; return (time, alert) pairs."""
    fired = []
    for i, faces in enumerate(frames):
        for alert in monitor.update(i * step_s, faces, frame):
            fired.append((i * step_s, alert))
    return fired


def test_alert_fires_once_after_the_delay_with_a_snapshot():
    frame = np.full((240, 320, 3), 50, np.uint8)
    fired = feed(AlertMonitor(delay_s=3.0), [[face("no_mask")]] * 12, frame=frame)
    assert [t for t, _ in fired] == [3.0]
    alert = fired[0][1]
    assert (alert.track_id, alert.box, alert.score) == (1, BOX, 0.9)
    height, width = alert.snapshot.shape[:2]
    assert width > BOX[2] - BOX[0] and height > BOX[3] - BOX[1]  # the face plus a margin
    assert not np.shares_memory(alert.snapshot, frame)


def test_masked_frame_resets_the_clock_and_rearms_the_track():
    no, yes = [face("no_mask")], [face("mask")]
    frames = [no] * 5 + [yes] + [no] * 8 + [yes] + [no] * 7
    fired = feed(AlertMonitor(delay_s=3.0), frames)
    # a stretch from 3.0 s fires at 6.0 s; after the mask at 7.0 s, one from 7.5 s at 10.5 s
    assert [t for t, _ in fired] == [6.0, 10.5]


def test_leaving_ends_a_stretch_and_tracks_are_independent():
    monitor = AlertMonitor(delay_s=1.0)
    frames = [
        [face("no_mask", 1)],
        [face("no_mask", 1), face("no_mask", 2)],
        [],
        [face("no_mask", 1), face("no_mask", 2)],
        [face("no_mask", 1), face("mask", 2)],
        [face("no_mask", 1), face("no_mask", None)],
        [face("no_mask", 1)],
    ]
    fired = feed(monitor, frames)
    assert [(t, a.track_id) for t, a in fired] == [(2.5, 1)]
    assert monitor.alerting == [1]
    with pytest.raises(ValueError, match="-1"):
        AlertMonitor(delay_s=-1)


def test_alert_log_lines_and_snapshots(tmp_path):
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    fired = feed(
        AlertMonitor(delay_s=0.0), [[face("no_mask", 4)], [face("no_mask", 7)]], frame=frame
    )
    log = AlertLog(tmp_path / "alerts")
    for _, alert in fired:
        log.append(alert)
    lines = [
        json.loads(line) for line in (tmp_path / "alerts" / ALERTS_FILE).read_text().splitlines()
    ]
    assert [line["track"] for line in lines] == [4, 7]
    assert set(lines[0]) == {"time", "media_time_s", "track", "box", "score", "snapshot"}
    assert lines[1]["media_time_s"] == 0.5 and lines[0]["box"] == list(BOX)
    assert "T" in lines[0]["time"]  # ISO date and time
    for line in lines:
        image = cv2.imread(str(tmp_path / "alerts" / line["snapshot"]))
        assert image is not None and image.shape[2] == 3
    assert not [p for p in (tmp_path / "alerts").iterdir() if "partial" in p.name]


def test_an_alert_whose_line_cannot_be_written_leaves_no_snapshot(tmp_path):
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    ((_, alert),) = feed(AlertMonitor(delay_s=0.0), [[face("no_mask", 4)]], frame=frame)
    folder = tmp_path / "alerts"
    (folder / ALERTS_FILE).mkdir(parents=True)  # the log cannot be appended to
    with pytest.raises(OSError, match="is not a regular file"):
        AlertLog(folder).append(alert)
    assert [p.name for p in folder.iterdir()] == [ALERTS_FILE]


def test_an_alert_after_a_line_cut_short_starts_a_line_of_its_own(tmp_path):
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    ((_, alert),) = feed(AlertMonitor(delay_s=0.0), [[face("no_mask", 4)]], frame=frame)
    folder = tmp_path / "alerts"
    folder.mkdir()
    (folder / ALERTS_FILE).write_text('{"time": "x", "track": 9}')  # no final newline
    AlertLog(folder).append(alert)
    lines = (folder / ALERTS_FILE).read_text().splitlines()
    assert lines[0] == '{"time": "x", "track": 9}'
    assert json.loads(lines[1])["track"] == 4 and len(lines) == 2


@contextlib.contextmanager
def files_limited_to(size: int):
    """Let this process grow no file past ``size`` bytes: a write that crosses it is cut
    short by the kernel and the next one fails (EFBIG), as on a disk that fills mid-line."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


@pytest.mark.parametrize("earlier", ['{"track": 9}\n', '{"track": 9}'])  # the second cut short
def test_a_line_that_fills_the_disk_leaves_the_log_as_it_was(tmp_path, earlier):
    frame = np.full((240, 320, 3), 50, np.uint8)  # a flat face: a small snapshot
    ((_, alert),) = feed(AlertMonitor(delay_s=0.0), [[face("no_mask", 4)]], frame=frame)
    folder = tmp_path / "alerts"
    folder.mkdir()
    path = folder / ALERTS_FILE
    path.write_text(earlier * 200)  # room for the snapshot, none for a whole new line
    before = path.read_bytes()
    with files_limited_to(len(before) + 7), pytest.raises(OSError) as failed:
        AlertLog(folder).append(alert)
    assert failed.value.errno == errno.EFBIG
    assert path.read_bytes() == before
    assert [p.name for p in folder.iterdir()] == [ALERTS_FILE]  # nor a snapshot left

    AlertLog(folder).append(alert)  # room again: the next alert is a whole line of its own
    assert json.loads(path.read_text().splitlines()[-1])["track"] == 4


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EIO])
def test_an_alert_on_a_file_system_that_cannot_flush_is_kept(tmp_path, monkeypatch, code):
    """Some network and FUSE file systems refuse fsync (EINVAL): the line stays, as written
    files do there; a disk that reports the data lost (EIO) fails the append, as before."""
    ((_, alert),) = feed(AlertMonitor(delay_s=0.0), [[face("no_mask", 4)]])
    folder = tmp_path / "alerts"

    def fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fsync)
    if code == errno.EINVAL:
        AlertLog(folder).append(alert)
        assert json.loads((folder / ALERTS_FILE).read_text())["track"] == 4
    else:
        with pytest.raises(OSError, match=str(folder / ALERTS_FILE)):
            AlertLog(folder).append(alert)
        assert (folder / ALERTS_FILE).read_bytes() == b""


def test_a_log_that_is_a_pipe_or_a_link_is_refused_at_once(tmp_path):
    """A pipe named alerts.jsonl stalled the window's thread for good on opening it; a link
    had its target written to."""
    ((_, alert),) = feed(AlertMonitor(delay_s=0.0), [[face("no_mask", 4)]])
    pipe_folder, link_folder = tmp_path / "pipe", tmp_path / "link"
    pipe_folder.mkdir()
    link_folder.mkdir()
    os.mkfifo(pipe_folder / ALERTS_FILE)
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("mine\n")
    (link_folder / ALERTS_FILE).symlink_to(target)
    with pytest.raises(OSError, match="is not a regular file"):
        AlertLog(pipe_folder).append(alert)
    with pytest.raises(OSError, match=f"is a symbolic link to {target}"):
        AlertLog(link_folder).append(alert)
    assert target.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        ALERTS_FILE,
        ALERTS_FILE,
        "elsewhere.jsonl",
        "link",
        "pipe",
    ]


def test_a_log_that_holds_a_model_is_never_added_to(tmp_path):
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    ((_, alert),) = feed(AlertMonitor(delay_s=0.0), [[face("no_mask", 4)]], frame=frame)
    folder = tmp_path / "alerts"
    folder.mkdir()
    model = shutil.copy(ROOT / "models" / "student.pt", folder / ALERTS_FILE)
    for _ in range(2):
        with pytest.raises(OSError, match="holds PyTorch weights, which alerts are never added"):
            AlertLog(folder).append(alert)
    assert model.read_bytes() == (ROOT / "models" / "student.pt").read_bytes()
    assert [p.name for p in folder.iterdir()] == [ALERTS_FILE]


def sequence(stats: FaceStats, seconds, faces_at, fps: int = 2):
    for i in range(int(seconds * fps)):
        t = i / fps
        stats.add(t, faces_at(t))


def test_stats_count_faces_by_majority_and_shares():
    def faces_at(t):
        out = []
        if t < 10:  # face 1: masked except one frame
            out.append(face("no_mask" if t == 3 else "mask", 1))
        if 5 <= t < 20:  # face 2: unmasked throughout
            out.append(face("no_mask", 2))
        if 90 <= t < 100:  # face 3: masked, much later
            out.append(face("mask", 3))
        return out

    stats = FaceStats()
    sequence(stats, 100, faces_at)
    summary = stats.summary()
    assert (summary.session.faces, summary.session.masked) == (3, 2)
    assert summary.session.masked_share == pytest.approx(2 / 3)
    assert (summary.last_minute.faces, summary.last_minute.masked) == (1, 1)
    assert summary.last_minute.masked_share == 1.0

    rows = {row.time_s: row.tally for row in stats.series()}
    assert len(rows) == 100
    assert (rows[3].faces, rows[3].masked) == (1, 0)  # one mask and one no_mask frame: a tie
    assert (rows[6].faces, rows[6].masked) == (2, 1)
    assert rows[50].faces == 0 and rows[50].masked_share is None
    assert [row.time_s for row in stats.series(span_s=5)] == [95, 96, 97, 98, 99]


def test_each_track_and_each_untracked_face_counts_once():
    stats = FaceStats()
    stats.add(0.0, [face("mask", 1)])
    stats.add(0.5, [face("no_mask", 1), face("no_mask", 2)])
    stats.add(0.7, [face("no_mask", None), face("no_mask", None)])
    assert stats.summary().session.faces == 4
    assert not is_masked(Counter({"mask": 1, "no_mask": 1}))  # a tie counts as unmasked
    assert is_masked(Counter({"mask": 2, "no_mask": 1}))


def test_stats_csv_contents(tmp_path):
    stats = FaceStats()
    stats.add(0.0, [face("mask", 1), face("no_mask", 2)])
    stats.add(0.5, [face("mask", 1), face("no_mask", 2), face("mask", 3)])
    stats.add(1.2, [])
    stats.add(3.0, [face("no_mask", 2)])
    path = tmp_path / "stats.csv"
    stats.write_csv(path)
    assert path.read_text() == (
        "time_s,faces,masked,unmasked,masked_share\n0,3,2,1,0.667\n1,0,0,0,\n3,1,0,1,0.000\n"
    )
    with pytest.raises(FileExistsError):
        stats.write_csv(path)
    stats.write_csv(path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["stats.csv"]


def test_recorder_times_frames_and_renames_only_when_stopped(tmp_path):
    path = tmp_path / "rec.mp4"
    recorder = VideoRecorder(path, fps=10)
    frame = np.zeros((120, 160, 3), np.uint8)
    assert recorder.write(frame, 5.0) == 1
    assert recorder.write(frame, 5.05) == 0  # sooner than 10 fps needs
    assert recorder.write(frame, 5.5) == 5  # fills the half second
    assert not path.exists() and recorder.tmp.exists()
    assert recorder.stop() == path and not recorder.tmp.exists()
    video = cv2.VideoCapture(str(path))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    aborted = VideoRecorder(tmp_path / "gone.mp4")
    aborted.write(frame, 0.0)
    aborted.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mp4"]


def test_headless_alerts_stats_and_snapshots(tmp_path, no_mask_video):
    alerts, stats, snaps = tmp_path / "alerts", tmp_path / "stats.csv", tmp_path / "snaps"
    events = tmp_path / "events.jsonl"
    proc = run_app(
        "--source",
        no_mask_video,
        "--device",
        "cpu",
        "--events",
        events,
        "--alerts",
        alerts,
        "--alert-delay",
        "0.5",
        "--stats",
        stats,
        "--snapshot-every",
        "5",
        "--snapshots",
        snaps,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith(
        "12 frames, 12 face boxes (no_mask 12) of 1 face,"
    )
    assert f"1 alert written to {alerts}" in proc.stdout

    lines = [json.loads(line) for line in (alerts / ALERTS_FILE).read_text().splitlines()]
    assert len(lines) == 1
    alert = lines[0]
    assert alert["track"] == 1 and alert["media_time_s"] == 0.5 and len(alert["box"]) == 4
    snapshot = cv2.imread(str(alerts / alert["snapshot"]))
    assert snapshot is not None and 0 < snapshot.shape[1] < 640

    rows = list(csv.DictReader(io.StringIO(stats.read_text())))
    assert [
        (r["time_s"], r["faces"], r["masked"], r["unmasked"], r["masked_share"]) for r in rows
    ] == [("0", "1", "0", "1", "0.000"), ("1", "1", "0", "1", "0.000")]

    pngs = sorted(p.name for p in snaps.iterdir())
    assert pngs == [f"no_mask.mp4-frame{i:06d}.png" for i in (0, 5, 10)]
    assert cv2.imread(str(snaps / pngs[0])).shape == (480, 640, 3)
    record = json.loads(events.read_text().splitlines()[0])
    assert set(record) == {"frame", "time_s", "faces"}  # the events format did not change


def test_headless_keeps_existing_alerts_and_checks_flags(tmp_path, no_mask_video):
    (tmp_path / ALERTS_FILE).write_text("precious\n")
    proc = run_app("--source", no_mask_video, "--alerts", tmp_path)
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert (tmp_path / ALERTS_FILE).read_text() == "precious\n"
    proc = run_app("--source", no_mask_video, "--snapshot-every", "3")
    assert proc.returncode == 2 and "--snapshot-every N needs --snapshots DIR" in proc.stderr
    proc = run_app("--source", no_mask_video, "--snapshot-every", "0", "--snapshots", tmp_path)
    assert proc.returncode == 2
    assert "--snapshot-every must be at least 1 with --snapshots, got 0" in proc.stderr
    proc = run_app("--source", no_mask_video, "--snapshots", tmp_path)
    assert proc.returncode == 2
    assert "--snapshots DIR needs --snapshot-every N" in proc.stderr
    proc = run_app("--source", no_mask_video, "--stats", tmp_path / "s.csv", "--alert-delay", "-2")
    assert proc.returncode == 2 and "-2" in proc.stderr and "Traceback" not in proc.stderr


def test_overwritten_alerts_take_their_snapshots_along(tmp_path, no_mask_video):
    alerts = tmp_path / "alerts"
    flags = ("--source", no_mask_video, "--alerts", alerts, "--alert-delay", "0.5")
    assert run_app(*flags).returncode == 0
    (first,) = [json.loads(line)["snapshot"] for line in (alerts / ALERTS_FILE).open()]
    # The user's own files, and a line naming a file outside the folder, are left alone.
    (alerts / "alert-mine.jpg").write_bytes(b"kept")
    (tmp_path / "outside.jpg").write_bytes(b"kept")
    with (alerts / ALERTS_FILE).open("a") as out:
        out.write(json.dumps({"snapshot": "../outside.jpg"}) + "\n")
    proc = run_app(*flags, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    (second,) = [json.loads(line)["snapshot"] for line in (alerts / ALERTS_FILE).open()]
    assert second != first
    assert sorted(p.name for p in alerts.iterdir()) == sorted(
        [ALERTS_FILE, second, "alert-mine.jpg"]
    )
    assert (tmp_path / "outside.jpg").read_bytes() == b"kept"


def test_overwritten_frame_snapshots_leave_none_of_the_earlier_run(tmp_path, no_mask_video):
    snaps = tmp_path / "snaps"
    first = run_app("--source", no_mask_video, "--snapshots", snaps, "--snapshot-every", "5")
    assert first.returncode == 0, first.stderr
    mine = ["mine.png", "no_mask.mp4-frame-holiday.png", "no_mask.mp4-frame000005-edited.png"]
    mine += ["no_mask.mp4-frame0000010.png"]  # 7 digits with a leading 0: no run writes it
    mine += ["no_mask-frame000000.png", "no_mask.mov-frame000000.png"]  # other sources' frames
    for name in mine:  # the user's files, though some look like snapshots of this source
        (snaps / name).write_bytes(b"kept")
    proc = run_app(
        *("--source", no_mask_video, "--snapshots", snaps, "--snapshot-every", "10"),
        "--overwrite",
    )
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in snaps.iterdir())
    ours = ["no_mask.mp4-frame000000.png", "no_mask.mp4-frame000010.png"]
    assert names == sorted(mine + ours)
    assert all((snaps / name).read_bytes() == b"kept" for name in mine)
