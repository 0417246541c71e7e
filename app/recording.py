"""Saving what the user sees: the annotated stream as an mp4.

A recording is written under a temporary name in its folder and renamed when it stops, so a
crash never leaves a half-written file under the final name. Frames are placed by their media
time at a fixed rate, so a recording plays at real speed even when frames were skipped. A
recording does not begin on a disk without room to finish it, and stops itself while the disk
still has room for the file's index: OpenCV's writer reports no write errors, and a file cut
off by a full disk plays nowhere. Qt-free.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from app.atomic import place, temp_name
from app.source import ffmpeg_name

log = logging.getLogger(__name__)

RECORD_FPS = 15.0
FOURCC = "mp4v"
# A recording stops while its disk has this much left, so the index the mp4 needs at the
# end still fits; the free space is looked at every FREE_CHECK_S of recorded video.
MIN_FREE_BYTES = 50 * 1024 * 1024
FREE_CHECK_S = 2.0


class DiskLowError(OSError):
    """The disk holding a recording is nearly full: do not begin one, or stop and keep what
    was recorded."""


def free_bytes(folder: Path) -> int:
    """Bytes free on the disk holding ``folder``: the one place a recording reads it."""
    return shutil.disk_usage(folder).free


def check_room(folder: Path) -> None:
    """Raise DiskLowError when the disk holding ``folder`` has under MIN_FREE_BYTES free.

    A folder whose free space cannot be read passes: what is wrong with it is told, in its
    own words, when the file is opened or finished there.
    """
    try:
        free = free_bytes(folder)
    except OSError:
        return
    if free < MIN_FREE_BYTES:
        raise DiskLowError(
            errno.ENOSPC,
            f"the disk holding {folder} has {free / 2**20:.1f} MB free and a recording "
            f"needs at least {MIN_FREE_BYTES / 2**20:.0f} MB",
        )


def writer_refused(path: Path, width: int, height: int) -> OSError:
    """The error for a video writer OpenCV would not open for ``path``, with the likely cause:
    the window's recordings and headless --output say it alike."""
    if min(width, height) < 2:
        return OSError(
            f"cannot write video {path} ({width}x{height} frames; "
            f"OpenCV's {FOURCC} writer needs at least 2x2)"
        )
    return OSError(f"cannot write video {path}")


def stamped_path(folder: Path, prefix: str, suffix: str) -> Path:
    """``folder/prefix-YYYYmmdd-HHMMSS-mmm.suffix``, with a counter if that name is taken."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    path = Path(folder) / f"{prefix}-{stamp}{suffix}"
    n = 1
    while path.exists():
        path = Path(folder) / f"{prefix}-{stamp}-{n}{suffix}"
        n += 1
    return path


def check_video_complete(path: Path, final: Path, frames_written: int) -> None:
    """Raise OSError unless the finished video at ``path`` reads back with all its frames.

    OpenCV's writer reports no write errors: on a full disk it leaves a file without its
    index that no player opens, so a file is only given its final name after this check.
    """
    path, final = Path(path), Path(final)
    if not path.exists():
        where = (
            f"its folder {final.parent} was removed"
            if not final.parent.is_dir()
            else "its temporary file was removed"
        )
        raise FileNotFoundError(f"video {final} was lost while it was written: {where}")
    capture = cv2.VideoCapture(ffmpeg_name(path))
    try:
        ok, _ = capture.read()
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    if not ok or count < frames_written:
        size = path.stat().st_size if path.exists() else 0
        raise OSError(
            f"video {final} could not be written completely ({size:,} bytes, "
            f"{max(count, 0) if ok else 0} of {frames_written} frames readable; is the disk full?)"
        )


class VideoRecorder:
    """Writes BGR frames to ``path`` (mp4v) at ``fps``, timed by each frame's media time.

    Frames are written to a temporary name; ``stop`` renames the file to ``path``, ``abort``
    deletes it. The size is the first frame's; later frames of another size are resized.
    Free space is checked before the file is begun and every FREE_CHECK_S of video after.
    """

    def __init__(self, path: Path, fps: float = RECORD_FPS):
        self.path = Path(path)
        self.fps = fps
        self.tmp = temp_name(self.path)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self.frames_written = 0
        self._next_check = 0  # frames written when free space is next looked at
        self.closed = False

    def _open(self, width: int, height: int) -> None:
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"folder {self.path.parent} does not exist")
        writer = cv2.VideoWriter(
            ffmpeg_name(self.tmp), cv2.VideoWriter_fourcc(*FOURCC), self.fps, (width, height)
        )
        if not writer.isOpened():
            raise writer_refused(self.path, width, height)
        self._writer, self._size = writer, (width, height)

    def write(self, frame: np.ndarray, time_s: float) -> int:
        """Add a frame shown at media time ``time_s``; returns how often it was written.

        A frame is repeated to fill the time since the last one, or skipped when it comes
        sooner than the recording's frame rate needs.
        """
        if self.closed:
            raise RuntimeError(f"recording {self.path} is already closed")
        if self._writer is None:
            self._check_free()  # before the file exists: no empty video is left to finish
            self._open(frame.shape[1], frame.shape[0])
            self._t0 = time_s
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size)
        due = round((time_s - self._t0) * self.fps) + 1
        repeats = max(0, due - self.frames_written)
        if repeats and self.frames_written >= self._next_check:
            self._check_free()
        for _ in range(repeats):
            self._writer.write(frame)
        self.frames_written += repeats
        return repeats

    def _check_free(self) -> None:
        """Raise DiskLowError when the recording's disk is nearly full; the next look is
        FREE_CHECK_S of video later, however many frames each write repeats."""
        check_room(self.path.parent)
        self._next_check = self.frames_written + max(1, round(FREE_CHECK_S * self.fps))

    def stop(self) -> Path | None:
        """Finish the file and give it its final name; None when no frame was written."""
        if self.closed:
            return self.path if self.path.exists() else None
        self.closed = True
        if self._writer is None:
            return None
        self._writer.release()
        try:
            check_video_complete(self.tmp, self.path, self.frames_written)
            place(self.tmp, self.path, overwrite=True)
        except OSError:
            with contextlib.suppress(OSError):  # its folder may be gone, or now a file
                self.tmp.unlink()
            raise
        log.info("recorded %d frames to %s", self.frames_written, self.path)
        return self.path

    def abort(self) -> None:
        """Throw the recording away."""
        self.closed = True
        if self._writer is not None:
            self._writer.release()
        with contextlib.suppress(OSError):  # gone already, or its folder replaced by a file
            self.tmp.unlink()
