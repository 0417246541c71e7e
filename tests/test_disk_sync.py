"""Every output's data reaches the disk before it takes its final name, and the name after.

A power cut cannot be staged in a test, so os.fsync is wrapped to note what each call
flushed (a file or a folder, by inode) and what the final names held at that moment.
"""

import errno
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.atomic import describe_error, write_text
from app.headless import Extras, run_headless
from app.recording import VideoRecorder
from app.tracking import TrackingPipeline
from training.outputs import OutputSet


@dataclass
class Flush:
    inode: tuple[int, int]
    folder: bool
    held: dict[Path, tuple[int, int] | None]  # final name -> the inode it named then


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class FsyncLog(list):
    """The os.fsync calls so far, each with what the names in ``finals`` held then."""

    def __init__(self):
        super().__init__()
        self.finals: list[Path] = []

    def note(self, fd: int) -> None:
        st = os.fstat(fd)
        held = {final: _inode(final) for final in self.finals}
        self.append(Flush((st.st_dev, st.st_ino), stat.S_ISDIR(st.st_mode), held))


@pytest.fixture
def flushes(monkeypatch) -> FsyncLog:
    """os.fsync, still flushing, noted in a FsyncLog."""
    real_fsync, log = os.fsync, FsyncLog()

    def fsync(fd):
        log.note(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return log


def assert_flushed_then_named(flushes: list[Flush], final: Path) -> None:
    """``final``'s file was flushed while the name did not hold it yet, and its folder was
    flushed after the name held it."""
    inode = _inode(final)
    assert inode is not None, f"{final} was not written"
    of_file = [i for i, f in enumerate(flushes) if not f.folder and f.inode == inode]
    assert of_file, f"{final.name} never reached the disk before it was named"
    first = of_file[0]
    assert flushes[first].held[final] != inode, f"{final.name} was flushed after it was named"
    folder = _inode(final.parent)
    assert any(
        f.folder and f.inode == folder and f.held[final] == inode for f in flushes[first + 1 :]
    ), f"the folder of {final.name} was not flushed after the name was given"


@pytest.mark.parametrize("overwrite", [False, True])
def test_write_text_flushes_the_file_then_its_name(tmp_path, flushes, overwrite):
    final = tmp_path / "report.md"
    flushes.finals = [final]
    write_text(final, "# figures\n", overwrite=overwrite)
    assert final.read_text() == "# figures\n"
    assert_flushed_then_named(flushes, final)


def test_an_output_set_flushes_every_file_before_naming_it(tmp_path, flushes):
    weights, report = tmp_path / "run" / "student.pt", tmp_path / "run" / "report.json"
    weights.parent.mkdir()
    weights.write_bytes(b"earlier weights")  # replaced through keep_aside
    flushes.finals = [weights, report]
    with OutputSet(overwrite=True) as outputs:
        outputs.path(weights).write_bytes(b"new weights")
        outputs.path(report).write_text("{}")
        outputs.commit()
    assert weights.read_bytes() == b"new weights"
    assert_flushed_then_named(flushes, weights)
    assert_flushed_then_named(flushes, report)


def test_a_headless_runs_outputs_are_flushed_before_they_are_named(
    tmp_path, flushes, pipeline, no_mask_video
):
    video, events, stats = tmp_path / "out.mp4", tmp_path / "ev.jsonl", tmp_path / "st.csv"
    flushes.finals = [video, events, stats]
    summary = run_headless(
        TrackingPipeline(pipeline),
        str(no_mask_video),
        video,
        events,
        progress=False,
        extras=Extras(stats=stats),
    )
    assert summary.frames == 12 and not summary.failed
    for final in (video, events, stats):
        assert_flushed_then_named(flushes, final)
    lines_written = len(events.read_text().splitlines())
    assert lines_written == 12
    assert len(flushes) < lines_written  # once per file, not per line or frame


def test_a_recording_is_flushed_before_it_is_named(tmp_path, flushes):
    final = tmp_path / "rec.mp4"
    flushes.finals = [final]
    recorder = VideoRecorder(final)
    for i in range(5):
        recorder.write(np.full((64, 64, 3), 40 * i, np.uint8), i / recorder.fps)
    assert recorder.stop() == final
    assert_flushed_then_named(flushes, final)


def test_a_file_the_disk_could_not_flush_never_takes_its_name(tmp_path, monkeypatch):
    def failing_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    final = tmp_path / "stats.csv"
    with pytest.raises(OSError) as caught:
        write_text(final, "a,b\n", overwrite=False)
    assert describe_error(caught.value) == f"Input/output error: {final}"
    assert list(tmp_path.iterdir()) == []


def test_a_recording_the_disk_could_not_flush_leaves_no_file(tmp_path, monkeypatch):
    final = tmp_path / "rec.mp4"
    recorder = VideoRecorder(final)
    for i in range(3):
        recorder.write(np.full((64, 64, 3), 60 * i, np.uint8), i / recorder.fps)

    def failing_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError) as caught:
        recorder.stop()
    assert describe_error(caught.value) == f"Input/output error: {final}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "code, said",
    [
        (errno.EINVAL, []),  # a file system that cannot flush a folder: passed over quietly
        (
            errno.EIO,
            [
                "could not flush folder {folder} to disk (Input/output error): a power cut "
                "soon may lose the names of files just written there"
            ],
        ),
    ],
)
def test_a_folder_flush_that_fails_keeps_the_file(tmp_path, monkeypatch, caplog, code, said):
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    final = tmp_path / "events.jsonl"
    with caplog.at_level(logging.DEBUG, logger="app.atomic"):
        write_text(final, "{}\n")
    assert final.read_text() == "{}\n"
    assert [r.getMessage() for r in caplog.records] == [s.format(folder=tmp_path) for s in said]
