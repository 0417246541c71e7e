"""Alerts for faces that stay unmasked: decided per track, logged as JPEG snapshots and JSON Lines.

``AlertMonitor`` is fed every processed frame and fires once per face (track) that has been
labelled no_mask without a break for the delay. ``AlertLog`` writes alerts into a folder as
``alerts.jsonl`` plus one snapshot of the face per alert. Nothing here depends on Qt; the
window and headless mode share it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np

from app.atomic import atomic_path, flush
from app.config import CropConfig
from app.crops import expand_box
from app.images import write_image
from models.file_kind import model_kind

log = logging.getLogger(__name__)

DEFAULT_DELAY_S = 3.0
UNMASKED = "no_mask"
ALERTS_FILE = "alerts.jsonl"
SNAPSHOT_PATTERN = "alert-*.jpg"  # every name Alert.snapshot_name gives
SNAPSHOT_MARGIN = CropConfig(margin=0.25, square=False)  # some context around the face
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Alert:
    """One face that stayed unmasked for the delay.

    Attributes:
        time_s: media time of the frame that fired it.
        track_id: the face's track; a track fires again only after a masked frame or leaving.
        box: the face box in frame pixels.
        score: the classifier's probability for no_mask.
        wall_time: when it fired, local time with offset.
        snapshot: BGR crop of the face with some margin, when the frame was given.
    """

    time_s: float
    track_id: int
    box: tuple[int, int, int, int]
    score: float
    wall_time: datetime = field(default_factory=lambda: datetime.now().astimezone())
    snapshot: np.ndarray | None = field(default=None, repr=False, compare=False)

    def record(self, snapshot_name: str | None) -> dict:
        """The alerts.jsonl line for this alert, naming its snapshot file."""
        return {
            "time": self.wall_time.isoformat(timespec="milliseconds"),
            "media_time_s": round(self.time_s, 3),
            "track": self.track_id,
            "box": [int(v) for v in self.box],
            "score": round(float(self.score), 4),
            "snapshot": snapshot_name,
        }

    def snapshot_name(self) -> str:
        stamp = self.wall_time.strftime("%Y%m%d-%H%M%S-%f")[:-3]
        return f"alert-{stamp}-track{self.track_id}.jpg"


def face_crop(frame: np.ndarray, box) -> np.ndarray:
    """A copy of the face at ``box`` with a margin around it, clipped to the frame."""
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = expand_box(box, width, height, SNAPSHOT_MARGIN)
    return frame[y1:y2, x1:x2].copy()


@dataclass
class _Run:
    """A track's current stretch of no_mask frames."""

    since_s: float
    fired: bool = False


class AlertMonitor:
    """Fires an Alert when a track has been labelled no_mask continuously for ``delay_s``.

    A masked frame or the track leaving the frame ends its stretch; it may then fire again.
    Faces without a track id are ignored, since their continuity cannot be told.
    """

    def __init__(self, delay_s: float = DEFAULT_DELAY_S):
        if delay_s < 0:
            raise ValueError(f"alert delay must not be negative, got {delay_s}")
        self.delay_s = delay_s
        self.reset()

    def reset(self) -> None:
        """Forget every track (the tracker restarted, so ids may be reused)."""
        self._runs: dict[int, _Run] = {}
        self._last_s: float | None = None

    @property
    def alerting(self) -> list[int]:
        """Tracks that have fired and are still unmasked in the frame."""
        return sorted(tid for tid, run in self._runs.items() if run.fired)

    def update(self, time_s: float, faces, frame: np.ndarray | None = None) -> list[Alert]:
        """Take one frame's faces (media time ``time_s``); return the alerts it fires.

        ``frame`` is the BGR frame without overlay; when given, alerts carry a face snapshot.
        """
        if self._last_s is not None and time_s < self._last_s:
            self.reset()  # time went back: a new source or a seek
        self._last_s = time_s
        present = {face.track_id for face in faces if face.track_id is not None}
        for gone in set(self._runs) - present:
            del self._runs[gone]

        alerts = []
        for face in faces:
            if face.track_id is None:
                continue
            if face.label != UNMASKED:
                self._runs.pop(face.track_id, None)
                continue
            run = self._runs.setdefault(face.track_id, _Run(time_s))
            if run.fired or time_s - run.since_s < self.delay_s:
                continue
            run.fired = True
            snapshot = face_crop(frame, face.box) if frame is not None else None
            alerts.append(
                Alert(time_s, face.track_id, tuple(face.box), face.score, snapshot=snapshot)
            )
        return alerts


def write_jpeg(path: Path, image: np.ndarray) -> None:
    """Write a BGR image as JPEG to ``path`` as it is (callers pick a temporary name)."""
    write_image(path, image, quality=JPEG_QUALITY)


def ends_open(path: Path) -> bool:
    """Whether the file at ``path`` holds text whose last line has no newline."""
    try:
        with open(path, "rb") as existing:
            if existing.seek(0, os.SEEK_END) == 0:
                return False
            existing.seek(-1, os.SEEK_END)
            return existing.read(1) != b"\n"
    except FileNotFoundError:
        return False


class AlertLogRefused(OSError):
    """The alerts log is a file that alerts must not be added to (one that holds a model)."""


def append_whole(path: Path, data: bytes) -> None:
    """Append ``data`` to the file at ``path`` (made if missing) whole, or not at all.

    A write that fails part way (a full disk) is cut back off, so the file is left as it was:
    an appended log line is never half there. The data is synced before returning, so that
    a file system that reports a full disk only then (network file systems) is caught too.

    NOTE: a process killed mid-write, or a file that will not be cut back (the truncate fails
    too), can still leave a partial line; the next append then starts a line of its own
    (``ends_open``) and readers skip lines that are not JSON. If another process appended to
    the same file meanwhile, nothing is cut (that would cut its line) and a warning says so.
    """
    # O_BINARY (Windows only): no newline may grow into two bytes, or the size check of
    # _cut_back would never match.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o666)
    try:
        size = os.fstat(fd).st_size
        written = 0
        try:
            while written < len(data):
                written += os.write(fd, data[written:])
            flush(fd, path)
        except OSError:
            if written:
                _cut_back(fd, path, size, written)
            raise
    finally:
        os.close(fd)


def _cut_back(fd: int, path: Path, size: int, written: int) -> None:
    """Truncate the file open as ``fd`` to ``size``, if the ``written`` bytes after it are all
    this process added; a failure here is logged, since the caller is raising already."""
    try:
        if os.fstat(fd).st_size != size + written:
            log.warning("%s changed during a failed append; its last line may be incomplete", path)
            return
        os.ftruncate(fd, size)
    except OSError as exc:
        log.warning("%s could not be cut back after a failed append: %s", path, exc)


class AlertLog:
    """An alerts folder: ``alerts.jsonl`` (one line per alert) and the snapshot JPEGs.

    ``append`` writes an alert at once (the window); headless mode collects its alerts and
    writes the ``files`` at the end so that nothing appears for a run that did not finish.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @property
    def path(self) -> Path:
        return self.folder / ALERTS_FILE

    def _snapshot_path(self, alert: Alert, taken: set[str]) -> Path | None:
        """A free name in the folder for the alert's snapshot; None when it has none."""
        if alert.snapshot is None or alert.snapshot.size == 0:
            return None
        name = alert.snapshot_name()
        stem, n = name[:-4], 1
        while name in taken or os.path.lexists(self.folder / name):
            name, n = f"{stem}-{n}.jpg", n + 1
        taken.add(name)
        return self.folder / name

    def append(self, alert: Alert) -> dict:
        """Write the alert's snapshot, then append its line to alerts.jsonl; returns the line.

        A log that holds a model, whatever its name, or that is a link, a pipe or anything but
        a file, is refused (AlertLogRefused) before anything is written. A snapshot whose line
        could not be written is removed again: a JPEG that no line names would never be
        cleaned up by a later --overwrite.
        """
        if self.path.is_symlink():  # appending would write into whatever it points to
            raise AlertLogRefused(
                f"{self.path} is a symbolic link to {os.readlink(self.path)}; alerts are "
                "added to a file of the alerts folder itself"
            )
        if self.path.exists() and not self.path.is_file():  # a pipe would stall the window
            raise AlertLogRefused(
                f"{self.path} is not a regular file (a folder, a pipe or a device); alerts "
                "are added to a file"
            )
        kind = model_kind(self.path)
        if kind:
            raise AlertLogRefused(f"{self.path} holds {kind}, which alerts are never added to")
        self.folder.mkdir(parents=True, exist_ok=True)
        snapshot = self._snapshot_path(alert, set())
        if snapshot is not None:
            with atomic_path(snapshot) as tmp:
                write_jpeg(tmp, alert.snapshot)
        record = alert.record(snapshot.name if snapshot is not None else None)
        try:
            # A log cut short (a crash mid-line, a hand edit) may lack its last newline: the
            # new record then starts a line of its own instead of joining that one.
            opening = "\n" if ends_open(self.path) else ""
            append_whole(self.path, (opening + json.dumps(record) + "\n").encode("utf-8"))
        except OSError:
            if snapshot is not None:
                with contextlib.suppress(OSError):
                    snapshot.unlink()
            raise
        log.info("alert: track %d unmasked at %.2f s", alert.track_id, alert.time_s)
        return record

    def earlier_snapshots(self) -> set[Path]:
        """The snapshot JPEGs that the folder's current alerts.jsonl names.

        A run told to overwrite alerts.jsonl removes these once its own files are in place,
        so the folder does not mix two runs. Only bare names of alert snapshots count: a
        line naming any other file (or another folder), or a file that holds a model
        whatever its name, is ignored, never deleted.
        """
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return set()
        named = set()
        for line in lines:
            try:
                name = json.loads(line).get("snapshot")
            except (ValueError, AttributeError):
                continue
            if (
                isinstance(name, str)
                and name == os.path.basename(name)
                and fnmatch.fnmatchcase(name, SNAPSHOT_PATTERN)
                and not model_kind(self.folder / name)
            ):
                named.add(self.folder / name)
        return named

    def files(self, alerts: list[Alert]) -> list[tuple[Path, Callable[[Path], None]]]:
        """What logging ``alerts`` in one go writes: each snapshot JPEG, then alerts.jsonl.

        Each file comes with a function that writes its content to a path it is given, so the
        caller decides the temporary names and when the files take their final ones.
        """
        taken: set[str] = set()
        files, records = [], []
        for alert in alerts:
            path = self._snapshot_path(alert, taken)
            if path is not None:
                files.append((path, lambda tmp, image=alert.snapshot: write_jpeg(tmp, image)))
            records.append(alert.record(path.name if path is not None else None))
        text = "".join(json.dumps(r) + "\n" for r in records)
        files.append((self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8")))
        return files
