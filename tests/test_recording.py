"""The recorder's watch on free disk space, without Qt.

A real nearly full disk needs a mount this suite cannot count on, so these tests replace
``app.recording.free_bytes``, the one function through which the recorder reads free space,
with a reading of their own; the frames, files and folders are real.
"""

import numpy as np
import pytest

from app import recording
from app.recording import MIN_FREE_BYTES, DiskLowError, VideoRecorder, check_room

FRAME = np.zeros((120, 160, 3), np.uint8)
MB = 2**20


def test_no_file_is_begun_on_a_disk_without_room_for_one(tmp_path, monkeypatch):
    monkeypatch.setattr(recording, "free_bytes", lambda _folder: 10 * MB)
    recorder = VideoRecorder(tmp_path / "rec.mp4", fps=15)
    with pytest.raises(DiskLowError) as caught:
        recorder.write(FRAME, 0.0)
    assert caught.value.strerror == (
        f"the disk holding {tmp_path} has 10.0 MB free and a recording needs at least 50 MB"
    )
    assert recorder.frames_written == 0 and recorder.stop() is None
    assert list(tmp_path.iterdir()) == []


def test_room_is_checked_even_when_frames_are_repeated_past_the_check(tmp_path, monkeypatch):
    """A 5 fps source into a 15 fps recording writes each frame three times: the count of
    frames written steps 1, 4, 7 ... and never lands on the 30 of a check every 2 s."""
    free = {"bytes": 10 * 2**30}
    monkeypatch.setattr(recording, "free_bytes", lambda _folder: free["bytes"])
    recorder = VideoRecorder(tmp_path / "rec.mp4", fps=15)
    recorder.write(FRAME, 0.0)
    free["bytes"] = MIN_FREE_BYTES - 1
    with pytest.raises(DiskLowError):
        for i in range(1, 5 * 10):  # ten seconds at 5 fps
            recorder.write(FRAME, i / 5)
    video_s = recorder.frames_written / recorder.fps
    assert recording.FREE_CHECK_S <= video_s <= recording.FREE_CHECK_S + 0.2  # the first check
    assert recorder.stop() == tmp_path / "rec.mp4"  # what was recorded is kept whole


def test_check_room_lets_an_unreadable_folder_pass(tmp_path):
    """A missing folder is told when the file is opened, in its own words."""
    check_room(tmp_path / "missing")
