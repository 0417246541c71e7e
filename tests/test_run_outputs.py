"""One output failing during a headless run costs that output only, never the others."""

import json
import shutil
import subprocess
import sys
import time

import cv2
import pytest
from conftest import ROOT, fixture_bgr, on_canvas, write_video

from app.atomic import OutputExistsError, place
from app.headless import Extras, run_headless
from app.run_outputs import RunOutputs
from app.tracking import TrackingPipeline


class FaultAt:
    """The real pipeline with a fault injected just before frame ``n`` is processed."""

    def __init__(self, pipeline, n, fault):
        self.pipeline, self.n, self.fault, self.seen = pipeline, n, fault, 0

    def process(self, frame):
        if self.seen == self.n:
            self.fault()
        self.seen += 1
        return self.pipeline.process(frame)

    def __getattr__(self, name):
        return getattr(self.pipeline, name)


def test_outputs_whose_folders_vanish_are_dropped_and_the_rest_written(
    tmp_path, pipeline, no_mask_video
):
    gone_events, gone_snaps = tmp_path / "a", tmp_path / "b"
    gone_events.mkdir()
    gone_snaps.mkdir()

    def remove_folders():
        shutil.rmtree(gone_events)
        shutil.rmtree(gone_snaps)

    video, stats = tmp_path / "annotated.mp4", tmp_path / "stats.csv"
    summary = run_headless(
        FaultAt(TrackingPipeline(pipeline), 5, remove_folders),
        str(no_mask_video),
        video,
        gone_events / "events.jsonl",
        progress=False,
        extras=Extras(stats=stats, snapshots_dir=gone_snaps, snapshot_every=2),
    )
    assert summary.frames == 12
    assert set(summary.failed) == {"events", "snapshots"}
    assert "no such file or folder" in summary.failed["events"]
    assert summary.failed["events"].endswith("a/events.jsonl")  # the name, not a temp name
    assert summary.snapshots == 0
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert len(stats.read_text().splitlines()) >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "stats.csv"]


def test_a_video_whose_folder_vanishes_is_named_and_the_events_kept(
    tmp_path, pipeline, no_mask_video
):
    folder = tmp_path / "videos"
    folder.mkdir()
    events = tmp_path / "events.jsonl"
    summary = run_headless(
        FaultAt(TrackingPipeline(pipeline), 3, lambda: shutil.rmtree(folder)),
        str(no_mask_video),
        folder / "out.mp4",
        events,
        progress=False,
    )
    assert summary.failed == {
        "video": f"video {folder / 'out.mp4'} was lost while it was written: "
        f"its folder {folder} was removed"
    }
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(12))


def test_an_output_another_run_created_meanwhile_is_kept(tmp_path):
    final = tmp_path / "events.jsonl"
    outputs = RunOutputs(overwrite=False)
    outputs.temp("events", final).write_text("this run\n")
    final.write_text("the other run\n")  # appears after this run's checks
    assert outputs.finish("events") == 0
    assert "created by someone else" in outputs.failed["events"]
    assert final.read_text() == "the other run\n"
    outputs.discard()
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]


def test_place_replaces_only_when_asked(tmp_path):
    final, tmp = tmp_path / "out.csv", tmp_path / ".out.partial-1.csv"
    final.write_text("old")
    tmp.write_text("new")
    with pytest.raises(OutputExistsError):
        place(tmp, final, overwrite=False)
    assert final.read_text() == "old"
    place(tmp, final, overwrite=True)
    assert final.read_text() == "new" and not tmp.exists()
    other = tmp_path / "fresh.csv"
    (tmp_path / ".fresh.partial-1.csv").write_text("x")
    place(tmp_path / ".fresh.partial-1.csv", other, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.csv", "out.csv"]


def test_the_command_warns_keeps_going_and_exits_1(tmp_path):
    source = write_video(tmp_path / "v.mp4", [on_canvas(fixture_bgr("no_mask_2.jpg"))] * 200)
    snaps, events = tmp_path / "snaps", tmp_path / "events.jsonl"
    snaps.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--headless", "--quiet", "--source", str(source),
         "--snapshots", str(snaps), "--snapshot-every", "1", "--events", str(events)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not any(snaps.iterdir()):
        time.sleep(0.02)
    shutil.rmtree(snaps)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 1, stderr
    assert "maskwatch: snapshots not written: cannot write image" in stderr
    assert "Traceback" not in stderr
    assert "200 frames" in stdout and "snapshots written" not in stdout
    assert len(events.read_text().splitlines()) == 200


def test_an_output_that_fails_while_placing_takes_back_what_it_placed(tmp_path):
    first, second = tmp_path / "v-frame000000.png", tmp_path / "v-frame000001.png"
    outputs = RunOutputs(overwrite=False)
    for final in (first, second):
        outputs.temp("snapshots", final).write_bytes(b"this run")
    second.write_bytes(b"another run")  # appears after this run's checks
    assert outputs.finish("snapshots") == 0
    assert "created by someone else" in outputs.failed["snapshots"]
    outputs.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [second.name]
    assert second.read_bytes() == b"another run"


def test_files_that_replaced_earlier_ones_are_named_when_kept(tmp_path):
    folder = tmp_path / "snaps"
    outputs = RunOutputs(overwrite=True)
    assert outputs.make_folder("snapshots", folder)
    first, second = folder / "v-frame000000.png", folder / "v-frame000001.png"
    first.write_bytes(b"earlier")
    for final in (first, second):
        outputs.temp("snapshots", final).write_bytes(b"this run")
    second.mkdir()  # a folder in the way: placing the second file fails
    assert outputs.finish("snapshots") == 0
    reason = outputs.failed["snapshots"]
    assert f"1 of its files had already replaced earlier ones and are kept: {first}" in reason
    outputs.close()
    assert first.read_bytes() == b"this run" and second.is_dir()


def test_folders_a_run_made_go_when_it_leaves_them_empty(tmp_path):
    outputs = RunOutputs(overwrite=False)
    assert outputs.make_folder("snapshots", tmp_path / "a" / "b" / "c")
    outputs.temp("snapshots", tmp_path / "a" / "b" / "c" / "f.png").write_bytes(b"x")
    (tmp_path / "kept").mkdir()
    assert outputs.make_folder("alerts", tmp_path / "kept")
    outputs.close()  # the run stopped early
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]


def test_alerts_are_all_written_or_none(tmp_path, pipeline, no_mask_video):
    """alerts.jsonl appearing meanwhile costs the alerts output its JPEGs too, and the
    command says nothing was written."""
    folder = tmp_path / "al"
    folder.mkdir()
    summary = run_headless(
        FaultAt(TrackingPipeline(pipeline), 3, lambda: (folder / "alerts.jsonl").write_text("x")),
        str(no_mask_video),
        progress=False,
        extras=Extras(alerts_dir=folder, alert_delay_s=0.1),
    )
    assert summary.alerts >= 1
    assert "created by someone else" in summary.failed["alerts"]
    assert [p.name for p in folder.iterdir()] == ["alerts.jsonl"]
    assert (folder / "alerts.jsonl").read_text() == "x"


def test_the_warning_says_other_outputs_go_on_only_when_there_are_some(tmp_path, caplog):
    outputs = RunOutputs(overwrite=False)
    outputs.temp("events", tmp_path / "events.jsonl")
    outputs.temp("stats", tmp_path / "stats.csv")
    with caplog.at_level("WARNING", logger="app.run_outputs"):
        outputs.fail("events", OSError(28, "No space left on device", str(tmp_path / "e")))
        outputs.fail("stats", OSError(28, "No space left on device", str(tmp_path / "s")))
    assert [r.getMessage() for r in caplog.records] == [
        f"events not written: no space left on the disk for {tmp_path / 'e'}; "
        "the other outputs go on",
        f"stats not written: no space left on the disk for {tmp_path / 's'}",
    ]


def test_a_failed_write_that_names_no_file_is_given_the_outputs_own(tmp_path):
    """A full disk met by write() on the events file said only "No space left on device"."""
    outputs = RunOutputs(overwrite=False)
    outputs.temp("events", tmp_path / "events.jsonl")
    outputs.fail("events", OSError(28, "No space left on device"))
    assert outputs.failed["events"] == (
        f"no space left on the disk for {tmp_path / 'events.jsonl'}"
    )
