"""Headless mode end to end, through the real command line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from conftest import fixture_bgr, on_canvas, run_app, shell, start_app, write_video

ROOT = Path(__file__).resolve().parents[1]


def test_headless_writes_video_and_events(tmp_path, no_mask_video):
    out, events = tmp_path / "annotated.mp4", tmp_path / "events.jsonl"
    proc = run_app(
        "--source", no_mask_video, "--output", out, "--events", events, "--device", "cpu"
    )
    assert proc.returncode == 0, proc.stderr
    assert "12 frames" in proc.stdout and "model student" in proc.stdout
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    assert records[1]["time_s"] == 0.1
    labels = [f["label"] for r in records for f in r["faces"]]
    assert len(labels) == 12 and set(labels) == {"no_mask"}
    face = records[0]["faces"][0]
    assert set(face) == {"box", "label", "score"} and len(face["box"]) == 4
    video = cv2.VideoCapture(str(out))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert int(video.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640
    ok, frame = video.read()
    x1, y1, x2, y2 = face["box"]
    red = frame[y1 + 1, x1:x2].astype(int)  # the box edge is drawn in the no_mask colour
    assert ok and (red[:, 2] > 150).mean() > 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "events.jsonl"]


def test_headless_teacher_on_mixed_video(tmp_path, mixed_video):
    events = tmp_path / "e.jsonl"
    proc = run_app(
        "--source",
        mixed_video,
        "--events",
        events,
        "--model",
        "teacher",
        "--detect-every",
        "1",
        "--smooth",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    labels = [
        [f["label"] for f in json.loads(line)["faces"]] for line in events.read_text().splitlines()
    ]
    assert labels[:6] == [["mask"]] * 6 and labels[6:] == [["no_mask"]] * 6


def test_existing_output_is_kept_without_overwrite(tmp_path, no_mask_video):
    events = tmp_path / "events.jsonl"
    events.write_text("precious\n")
    proc = run_app("--source", no_mask_video, "--events", events)
    assert proc.returncode == 2
    assert "already exists" in proc.stderr and "Traceback" not in proc.stderr
    assert events.read_text() == "precious\n"


def test_every_existing_output_is_named_at_once(tmp_path, no_mask_video):
    events, stats = tmp_path / "events.jsonl", tmp_path / "stats.csv"
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    for i in (0, 5):
        (snaps / f"no_mask.mp4-frame{i:06d}.png").write_bytes(b"mine")
    events.write_text("precious\n")
    stats.write_text("mine\n")
    argv = ["--source", no_mask_video, "--events", events, "--stats", stats]
    proc = run_app(*argv, "--snapshots", snaps, "--snapshot-every", "5")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"maskwatch: error: {events}, {stats} and 2 snapshots in {snaps} "
        "(no_mask.mp4-frame000000.png, ...) already exist (pass --overwrite to replace them)"
    )
    assert events.read_text() == "precious\n" and stats.read_text() == "mine\n"
    stats.unlink()
    proc = run_app(*argv)
    assert proc.stderr.strip().splitlines()[-1] == (
        f"maskwatch: error: {events} already exists (pass --overwrite to replace it)"
    )


def test_missing_source_is_one_line(tmp_path):
    proc = run_app("--source", tmp_path / "nope.mp4", "--events", tmp_path / "e.jsonl")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"maskwatch: error: video file {tmp_path / 'nope.mp4'} not found"
    ]


def test_ctrl_c_leaves_no_half_written_output(tmp_path):
    import signal
    import time

    from conftest import fixture_bgr, on_canvas, write_video

    frames = [on_canvas(fixture_bgr("no_mask_1.jpg"))] * 400
    video = write_video(tmp_path / "long.mp4", frames, fps=25)
    out, events = tmp_path / "out.mp4", tmp_path / "events.jsonl"
    proc = start_app("--source", video, "--output", out, "--events", events, "--detect-every", "1")
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(".out.partial-*")):
        time.sleep(0.1)
    time.sleep(1.0)  # well into the run
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "no partial output was kept" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


def test_outputs_that_collide_are_refused_before_any_work(tmp_path, no_mask_video):
    same = tmp_path / "same.mp4"
    proc = run_app("--source", no_mask_video, "--output", same, "--events", same)
    assert proc.returncode == 2 and "named for two outputs" in proc.stderr
    proc = run_app("--source", no_mask_video, "--output", no_mask_video, "--overwrite")
    assert proc.returncode == 2 and "is the source video" in proc.stderr
    assert no_mask_video.stat().st_size > 0
    proc = run_app("--source", no_mask_video, "--output", tmp_path / "noext")
    assert proc.returncode == 2 and "use one of" in proc.stderr
    proc = run_app("--source", no_mask_video, "--events", tmp_path, "--overwrite")
    assert proc.returncode == 2 and "is a folder" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_earlier_snapshots(tmp_path):
    import signal
    import time

    from conftest import fixture_bgr, on_canvas, write_video

    video = write_video(tmp_path / "v.mp4", [on_canvas(fixture_bgr("no_mask_2.jpg"))] * 300)
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    earlier = snaps / "v.mp4-frame000000.png"
    earlier.write_bytes(b"an earlier snapshot")
    proc = start_app(
        "--source", video, "--snapshots", snaps, "--snapshot-every", "1", "--overwrite"
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(snaps.iterdir())) < 4:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert earlier.read_bytes() == b"an earlier snapshot"
    assert [p.name for p in snaps.iterdir()] == [earlier.name]


def test_bad_values_are_refused(tmp_path, no_mask_video, capsys):
    from app.cli import main

    for flags, message in [
        (["--max-frames", "-1"], "--max-frames"),
        (["--max-side", "-1"], "--max-side"),
        (["--max-side", "3"], "at least 64 pixels"),
        (["--detect-scale", "1e-9"], "--detect-scale must be between 0.1 and 4"),
        (["--detect-scale", "nan"], "--detect-scale"),
        (["--thresholds", "2", "0.5", "0.5"], "[0, 1]"),
        (["--thresholds", "nan", "0.5", "0.5"], "[0, 1]"),
        (["--min-score", "5"], "[0, 1]"),
        (["--min-face", "0"], "--min-face"),
        (["--alert-delay", "nan"], "--alert-delay"),
        (["--detector-weights", str(tmp_path / "none.pt")], "none.pt not found"),
        (["--events", str(no_mask_video) + "/e.jsonl"], "is a file, not a folder"),
    ]:
        code = main(["--headless", "--quiet", "--source", str(no_mask_video), *flags])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (flags, err)


def test_slow_frame_rate_keeps_its_time_base(tmp_path):
    """A 0.5 fps export (CCTV time-lapse) is timed at 2 s per frame, not at 30 fps."""
    from conftest import fixture_bgr, on_canvas, write_video

    frames = [on_canvas(fixture_bgr("no_mask_1.jpg"))] * 4
    video = write_video(tmp_path / "slow.mp4", frames, fps=0.5)
    events = tmp_path / "e.jsonl"
    proc = run_app("--source", video, "--events", events, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    times = [json.loads(line)["time_s"] for line in events.read_text().splitlines()]
    assert times == [0.0, 2.0, 4.0, 6.0]


def test_a_pipe_as_source_is_refused_at_once(tmp_path):
    import os

    fifo = tmp_path / "feed.mp4"
    os.mkfifo(fifo)
    proc = run_app("--source", fifo, "--events", tmp_path / "e.jsonl", timeout=120)
    assert proc.returncode == 2
    assert "feed.mp4 is not a regular file" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("index", ["-1", "1000", "2147483648"])
def test_a_camera_index_out_of_range_is_said_as_the_window_says_it(index):
    from app.source import SourceError, VideoSource

    with pytest.raises(SourceError) as refused:
        VideoSource(index)
    assert str(refused.value) == f"no camera at index {index}: indices run from 0 to 999"


def test_an_incomplete_video_is_never_given_its_final_name(tmp_path, no_mask_video):
    """OpenCV's writer reports no errors (a full disk leaves a file without its index):
    the finished file is read back before it is renamed."""
    import pytest

    from app.recording import check_video_complete

    whole = tmp_path / "whole.mp4"
    whole.write_bytes(no_mask_video.read_bytes())
    check_video_complete(whole, whole, 12)
    cut = tmp_path / ".cut.partial-1.mp4"
    cut.write_bytes(no_mask_video.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(OSError, match="video out.mp4 could not be written completely"):
        check_video_complete(cut, Path("out.mp4"), 12)
    with pytest.raises(OSError, match="12 of 13 frames readable"):
        check_video_complete(whole, whole, 13)


def test_os_errors_name_the_output_not_its_temporary_file():
    import errno

    from app.atomic import describe_error, final_name, temp_name

    out = Path("/data/run/annotated.mp4")
    assert final_name(temp_name(out)) == out
    full = OSError(errno.ENOSPC, "No space left on device", str(temp_name(out)))
    assert describe_error(full) == "no space left on the disk for /data/run/annotated.mp4"
    read_only = OSError(errno.EROFS, "Read-only file system", str(temp_name(out)))
    assert describe_error(read_only) == (
        "cannot write /data/run/annotated.mp4: the file system is read-only"
    )
    assert describe_error(ValueError("--iou must be in (0, 1]")) == "--iou must be in (0, 1]"


def test_an_output_name_of_any_legal_length_can_be_written(tmp_path, no_mask_video):
    events = tmp_path / ("e" * 245 + ".jsonl")  # 251 bytes: legal, but not with a marker added
    proc = run_app("--source", no_mask_video, "--events", events, "--max-frames", "2")
    assert proc.returncode == 0, proc.stderr
    assert len(events.read_text().splitlines()) == 2
    assert [p.name for p in tmp_path.iterdir()] == [events.name]


def test_snapshots_of_a_source_with_a_very_long_name(tmp_path, no_mask_video):
    source = tmp_path / ("s" * 240 + ".mp4")
    source.write_bytes(no_mask_video.read_bytes())
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    proc = run_app(
        "--source", source, "--snapshots", snaps, "--snapshot-every", "5", "--max-frames", "6"
    )
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in snaps.iterdir())
    assert len(names) == 2 and all(n.endswith(".png") and len(n.encode()) <= 255 for n in names)


def refused(capsys, *flags) -> str:
    """Run the command line in this process; assert it refused with status 2 in one line."""
    from app.cli import main

    code = main(["--headless", "--quiet", *map(str, flags)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, (flags, err)
    return err


def test_outputs_that_share_any_file_are_refused_before_any_work(tmp_path, no_mask_video, capsys):
    """alerts.jsonl, the alert JPEGs and the frame PNGs are outputs' files too."""
    al, sn = tmp_path / "al", tmp_path / "sn"
    for flags in [
        ["--alerts", al, "--stats", al / "alerts.jsonl"],
        ["--alerts", al, "--events", al / "alert-20250101-101010-123-track1.jpg"],
        ["--snapshots", sn, "--snapshot-every", 10, "--events", sn / "no_mask.mp4-frame000010.png"],
        ["--alerts", sn, "--snapshots", sn, "--snapshot-every", 1, "--stats", sn / "alerts.jsonl"],
    ]:
        err = refused(capsys, "--source", no_mask_video, "--overwrite", *flags)
        assert "is named for two outputs" in err, err
    same = tmp_path / "same.txt"
    err = refused(capsys, "--source", no_mask_video, "--events", same, "--stats", same)
    assert f"{same} is named for two outputs, --events and --stats; give each its own" in err
    err = refused(capsys, "--source", no_mask_video, "--stats", al, "--alerts", al / "deeper")
    assert "must be a folder for another output" in err
    long = "e" * 240  # names that differ only past what a temporary name keeps of them
    err = refused(
        capsys, "--source", no_mask_video, "--events", tmp_path / f"{long}1.csv",
        "--stats", tmp_path / f"{long}2.csv",
    )  # fmt: skip
    assert "is named for two outputs" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["--output", "--stats", "--alerts"])
def test_a_dash_is_not_taken_for_a_file_name(tmp_path, no_mask_video, capsys, monkeypatch, flag):
    monkeypatch.chdir(tmp_path)
    err = refused(capsys, "--source", no_mask_video, flag, "-")
    assert f"{flag} -: standard output is offered to --events alone" in err
    assert list(tmp_path.iterdir()) == []


def test_events_dash_streams_json_lines_and_the_summary_goes_to_stderr(
    tmp_path, no_mask_video, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    proc = run_app("--source", no_mask_video, "--events", "-", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    assert {f["label"] for r in records for f in r["faces"]} == {"no_mask"}
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("12 frames, 12 face boxes (no_mask 12) of 1 face,")
    )
    assert list(tmp_path.iterdir()) == []  # no file named "-", no temporary one


@pytest.mark.parametrize("with_output", [False, True])
def test_a_reader_that_leaves_ends_a_streaming_run_unless_other_outputs_go_on(
    tmp_path, with_output
):
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    clip = write_video(tmp_path / "long.mp4", [frame] * 60)
    out = tmp_path / "annotated.mp4"
    flags = ["--source", clip, "--events", "-", "--device", "cpu"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--headless", "--quiet", *map(str, flags)]
        + (["--output", str(out)] if with_output else []),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = json.loads(proc.stdout.readline())
    proc.stdout.close()  # the reader goes, as `| head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=240) == 0, err
    assert first["frame"] == 0 and first["faces"][0]["label"] == "no_mask"
    assert "the reader of the events on standard output has gone" in err
    assert "Traceback" not in err and "stopped delivering" not in err
    frames = int(err.strip().splitlines()[-1].split()[0])
    if with_output:  # the video is still written, whole
        assert frames == 60 and "the other outputs go on" in err
        assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    else:
        assert 1 <= frames < 60 and not out.exists()


def test_a_refused_command_creates_no_folder(tmp_path, capsys):
    err = refused(
        capsys, "--source", tmp_path / "missing.mp4", "--alerts", tmp_path / "lo/alerts/deep/er",
        "--snapshots", tmp_path / "lo/snaps/x/y", "--snapshot-every", 3,
    )  # fmt: skip
    assert "missing.mp4 not found" in err
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    err = refused(capsys, "--source", "0", "--alerts", tmp_path / "file/al")
    assert f"{tmp_path / 'file'} is a file, not a folder, so {tmp_path / 'file/al'} cannot" in err
    err = refused(capsys, "--source", "0", "--alerts", tmp_path / "file")
    assert err.strip().endswith(f"{tmp_path / 'file'} is a file, not a folder")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_outputs_that_are_not_regular_files_are_refused(tmp_path, no_mask_video, capsys):
    import os

    fifo, target = tmp_path / "fifo.jsonl", tmp_path / "target.jsonl"
    os.mkfifo(fifo)
    target.write_text("kept\n")
    (tmp_path / "link.jsonl").symlink_to(target)
    for events, message in [
        (fifo, "is not a regular file"),
        (tmp_path / "link.jsonl", "is a symbolic link to"),
    ]:
        err = refused(capsys, "--source", no_mask_video, "--events", events, "--overwrite")
        assert message in err, err
    assert fifo.is_fifo() and (tmp_path / "link.jsonl").is_symlink()
    assert target.read_text() == "kept\n"
    (tmp_path / "folder").mkdir()
    (tmp_path / "linkdir").symlink_to(tmp_path / "folder")
    err = refused(capsys, "--source", no_mask_video, "--events", tmp_path / "linkdir")
    assert f"--events {tmp_path / 'linkdir'} is a folder; name a file" in err, err
    (tmp_path / "alerts" / "alerts.jsonl").mkdir(parents=True)
    err = refused(capsys, "--source", no_mask_video, "--alerts", tmp_path / "alerts")
    assert f"--alerts {tmp_path / 'alerts'} holds a folder named alerts.jsonl" in err, err


def test_empty_paths_and_odd_sources_get_a_plain_message(tmp_path, no_mask_video, capsys):
    err = refused(capsys, "--source", no_mask_video, "--student-weights", "")
    assert "--student-weights is empty" in err
    err = refused(capsys, "--source", no_mask_video, "--events", " ")
    assert "--events is empty; name a file" in err
    err = refused(capsys, "--source", no_mask_video, "--snapshot-every", "2", "--snapshots", "")
    assert "--snapshots is empty; name a folder" in err
    assert "video file ² not found" in refused(capsys, "--source", "²")
    err = refused(capsys, "--source", "http://[::1")
    assert "stream URL http://[::1 is malformed (Invalid IPv6 URL)" in err


def test_a_p_net_threshold_near_zero_warns_that_detection_is_slow(caplog):
    from app.cli import build_parser, pipeline_config

    args = build_parser().parse_args(["--thresholds", "0", "0", "0", "--min-score", "0"])
    pipeline_config(args)
    assert "--thresholds P 0 lets almost every window through P-Net" in caplog.text
    caplog.clear()
    pipeline_config(build_parser().parse_args(["--thresholds", "0.4", "0", "0"]))
    assert "P-Net" not in caplog.text


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--smooth", "0"], "--smooth must be at least 1, not 0"),
        (["--detect-every", "-2"], "--detect-every must be at least 1, not -2"),
        (["--events", "out/e.jsonl/"], "--events out/e.jsonl/ ends in '/', as a folder does"),
        (["--stats", "out/s.csv/."], "--stats out/s.csv/. ends in '/.', as a folder does"),
    ],
)
def test_a_count_below_one_is_named_by_its_flag(no_mask_video, capsys, flags, message):
    assert message in refused(capsys, "--source", no_mask_video, *flags)


def test_snapshot_names_tell_sources_apart():
    """Frames of clip.mp4 and clip.mov, of two cameras, of two streams, or of two long
    names never share a name; one file named two ways shares one."""
    from app.headless import snapshot_stem

    assert snapshot_stem("/videos/clip.mp4") == "clip.mp4"
    assert snapshot_stem("clip.mov") == "clip.mov"
    assert snapshot_stem("file:///videos/my%20clip.mp4") == "my clip.mp4"
    assert snapshot_stem("file://localhost/videos/clip.mp4") == "clip.mp4"
    assert snapshot_stem(".hidden.mp4") == "hidden.mp4"  # no hidden snapshot files
    assert snapshot_stem("0") == "camera0" and snapshot_stem("1") == "camera1"
    url = "rtsp://admin:secret@cam1.local:554/live?ch=2&pwd=hunter2"
    stem = snapshot_stem(url)
    assert stem.startswith("cam1.local_554_live-") and "secret" not in stem
    assert "hunter2" not in stem and "admin" not in stem
    assert stem != snapshot_stem("rtsp://admin:secret@cam1.local:554/live?ch=1&pwd=hunter2")
    streams = ["http://h/a/b", "http://h/a_b", "http://h/a?b", "rtsp://h/a/b"]
    assert len({snapshot_stem(s) for s in streams}) == 4
    one, two = (snapshot_stem("a" * 230 + end) for end in ("_one.mp4", "_two.mp4"))
    assert one != two and one.endswith(".mp4") and len(one.encode()) == 200


def test_a_source_named_by_a_file_url_is_never_replaced(tmp_path, no_mask_video, capsys):
    source = tmp_path / "my clip.mp4"
    source.write_bytes(no_mask_video.read_bytes())
    for url in (f"file://{tmp_path}/my%20clip.mp4", f"file://localhost{tmp_path}/my clip.mp4"):
        err = refused(capsys, "--source", url, "--output", source, "--overwrite")
        assert f"{source} is the source video; write the output elsewhere" in err
    assert source.read_bytes() == no_mask_video.read_bytes()


def test_relative_names_with_a_colon_are_files_not_protocols(
    tmp_path, no_mask_video, capsys, monkeypatch
):
    """FFmpeg reads ``cam1:2024.mp4`` as protocol cam1; camera exports are named so."""
    from app.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copy(no_mask_video, tmp_path / "cam1:2024.mp4")
    flags = ["--source", "cam1:2024.mp4", "--output", "./c:out.mp4", "--events", "c:ev.jsonl"]
    assert main(["--headless", "--quiet", "--max-frames", "4", *flags]) == 0, capsys.readouterr()
    capture = cv2.VideoCapture(str(tmp_path / "c:out.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    capture.release()
    assert len((tmp_path / "c:ev.jsonl").read_text().splitlines()) == 4


def test_a_flag_argparse_refuses_is_one_line_with_the_apps_error_prefix(capsys):
    from app.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["--headless", "--max-frames", "abc"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "maskwatch: error: argument --max-frames: invalid int value: 'abc' (--help lists the flags)"
    ]


def test_the_help_names_every_video_kind_output_takes(capsys):
    from app.cli import main
    from app.headless import VIDEO_SUFFIXES

    with pytest.raises(SystemExit):
        main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    line = said[said.index("--output OUTPUT ") :].split(" --events")[0]
    assert sorted(s for s in VIDEO_SUFFIXES if s in line) == sorted(VIDEO_SUFFIXES), line


def test_weights_for_the_model_not_run_are_named_as_unused(tmp_path, no_mask_video):
    broken = tmp_path / "teacher.pt"
    broken.write_bytes(b"not weights at all")
    proc = run_app("--source", no_mask_video, "--teacher-weights", broken, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert (
        f"WARNING maskwatch: --teacher-weights {broken} is not used: a headless run classifies "
        "with --model student only"
    ) in proc.stderr
    assert "12 frames" in proc.stdout


def test_events_to_dev_stdout_points_to_the_dash(no_mask_video, capsys):
    err = refused(capsys, "--source", no_mask_video, "--events", "/dev/stdout")
    assert "--events /dev/stdout is not a regular file; name a file, stream the events" in err
    assert "with --events -, or leave --events out to write none" in err


def test_events_to_dev_null_says_to_leave_the_flag_out(no_mask_video, capsys):
    err = refused(capsys, "--source", no_mask_video, "--events", "/dev/null")
    assert "--events /dev/null is not a regular file" in err
    assert "leave --events out to write none" in err


def test_dot_slash_dash_names_a_file_called_dash(tmp_path, no_mask_video, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--headless", "--quiet", "--source", str(no_mask_video)]
        + ["--events", "./-", "--device", "cpu"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("12 frames")  # the summary, not the events
    assert len((tmp_path / "-").read_text().splitlines()) == 12


def test_a_closed_standard_error_costs_nothing_and_a_closed_stdout_is_refused(
    tmp_path, no_mask_video
):
    """Started with `2>&-`, the run is whole: the progress bar goes nowhere (tqdm failed on
    the missing stream, and the run ended with status 1 and no output). With the events on
    standard output, only events reach it. With `>&-`, --events - is refused."""
    events = tmp_path / "events.jsonl"
    run = f"{sys.executable} -m app --headless --device cpu --source {no_mask_video}"
    proc = shell(f"{run} --events {events} 2>&-", timeout=240)
    assert proc.returncode == 0 and proc.stdout.startswith("12 frames, 12 face boxes")
    assert len(events.read_text().splitlines()) == 12
    proc = shell(f"{run} --quiet --events - 2>&-", timeout=240)
    assert proc.returncode == 0
    assert [json.loads(line)["frame"] for line in proc.stdout.splitlines()] == list(range(12))
    proc = shell(f"{run} --quiet --events - >&-", timeout=240)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        "maskwatch: error: --events -: standard output is closed, so the events would go "
        "nowhere; name a file (--help lists the flags)"
    ]


def test_the_readme_command_reads_relative_paths_from_the_callers_folder(tmp_path):
    """`bash scripts/app.sh --source clip.mp4` run elsewhere opens that folder's clip and
    writes there (it ran the app from the checkout, where clip.mp4 was not)."""
    write_video(tmp_path / "clip.mp4", [on_canvas(fixture_bgr("mask_1.jpg"))] * 3)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "app.sh"), "--headless", "--quiet", "--device", "cpu"]
        + ["--source", "clip.mp4", "--events", "events.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("3 frames, 3 face boxes (mask 3) of 1 face,")
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 3
    assert not (ROOT / "events.jsonl").exists()


def test_streamed_events_that_cannot_be_written_fail_alone(tmp_path, no_mask_video):
    """stdout on a full disk: the events are named as not written (status 1) and the other
    outputs are still written, as for a file output that fails."""
    stats = tmp_path / "stats.csv"
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "app", "--headless", "--quiet", "--device", "cpu"]
            + ["--source", str(no_mask_video), "--events", "-", "--stats", str(stats)],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=240,
        )
    assert proc.returncode == 1, proc.stderr
    assert "maskwatch: events not written: No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr and "12 frames" in proc.stderr
    assert stats.read_text().startswith("time_s,faces,masked,unmasked")


def test_every_killed_partial_in_an_output_folder_goes_and_long_names_too(tmp_path, no_mask_video):
    """A run killed outright leaves a partial file per snapshot and per alert file; the next
    run into those folders removes them all, whatever their names, and an output name that
    its temporary name had to shorten is cleaned up too."""
    from app.atomic import temp_name
    from models import checkpoint

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    snaps, alerts = tmp_path / "snaps", tmp_path / "alerts"
    snaps.mkdir()
    alerts.mkdir()
    events = tmp_path / ("e" * 240 + ".jsonl")
    killed = [
        snaps / f".no_mask.mp4-frame000005.partial-{gone.pid}.png",
        snaps / f".no_mask.mp4-frame000105.partial-{gone.pid}.png",
        alerts / f".alerts.partial-{gone.pid}.jsonl",
        alerts / f".alert-000001-track1.partial-{gone.pid}.jpg",
        temp_name(events, gone.pid),
    ]
    assert len(killed[-1].name) < len(events.name) + len(f".partial-{gone.pid}") + 1
    kept = [
        snaps / f".frame.partial-{os.getpid()}.png",  # its writer (this test) still runs
        snaps / f".notes.partial-{gone.pid}.txt",  # no snapshot: another program's
        snaps / f".previous-teacher.partial-{gone.pid}.pt",  # maybe the only copy of weights
    ]
    for path in killed + kept:
        path.write_bytes(bytes(1000))
    kept[-1].write_bytes(checkpoint.default_weights("student").read_bytes())
    for path in killed + kept:
        os.utime(path, (1_000_000_000, 1_000_000_000))
    proc = run_app(
        "--source", no_mask_video, "--events", events, "--snapshots", snaps,
        "--snapshot-every", "5", "--alerts", alerts, "--alert-delay", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [path for path in killed if path.exists()] == []
    assert all(path.exists() for path in kept)
    assert proc.stderr.count("the unfinished") == len(killed)
    assert events.exists() and (alerts / "alerts.jsonl").exists()
    assert len(list(snaps.glob("no_mask.mp4-frame*.png"))) == 3


def test_a_killed_runs_partial_output_is_removed_by_the_next_run_to_that_output(tmp_path):
    """kill -9 leaves the hidden temporary video (no index: unplayable) beside the output; the
    next run writing that output removes it and says so. A writer still alive, or a file
    changed in the last minute, is left alone."""
    clip = write_video(tmp_path / "clip.mp4", [on_canvas(fixture_bgr("mask_1.jpg"))] * 2)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "out.mp4"
    killed = tmp_path / f".out.partial-{gone.pid}.mp4"
    alive = tmp_path / f".out.partial-{os.getpid()}.mp4"
    fresh = tmp_path / f".out.partial-{gone.pid + 1_000_000}.mp4"  # no such process either
    for path in (killed, alive, fresh):
        path.write_bytes(bytes(3000))
        if path is not fresh:
            os.utime(path, (1_000_000_000, 1_000_000_000))
    proc = run_app("--source", clip, "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert f"removed {killed} (0.0 MB), the unfinished out.mp4 of a run that was killed" in (
        proc.stderr
    )
    assert out.exists() and not killed.exists() and alive.exists() and fresh.exists()
