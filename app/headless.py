"""Headless mode: run the pipeline over a source, write the annotated video and events.

Optionally also alerts for faces that stay unmasked, per-second statistics as CSV and every
n-th annotated frame as PNG.

Events are JSON Lines, one object per frame:
``{"frame": 0, "time_s": 0.0,
"faces": [{"box": [x1, y1, x2, y2], "label": "mask", "score": 0.98}]}``

Written to a file, they appear whole when the run ends; ``--events -`` sends each line to
standard output as soon as its frame is done instead, for a program that reads them live.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import itertools
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np
from tqdm import tqdm

from app.alerts import ALERTS_FILE, DEFAULT_DELAY_S, Alert, AlertLog, AlertMonitor
from app.alerts import SNAPSHOT_PATTERN as ALERT_SNAPSHOTS
from app.atomic import (
    STDOUT,
    OutputExistsError,
    check_folder,
    check_writable,
    temp_name,
)
from app.console import counted, send
from app.flags import FlagValueError
from app.images import GREY_NOTE, ColourWatch, write_image
from app.overlay import draw_faces
from app.pipeline import Pipeline
from app.recording import FOURCC, check_video_complete, writer_refused
from app.run_outputs import RunOutputs
from app.source import (
    VideoSource,
    describe,
    ffmpeg_name,
    is_utf8,
    plain_source,
    shown_name,
    shown_source,
    source_title,
)
from app.stats import FaceStats
from app.tracking import TrackingPipeline
from models.file_kind import model_kind

log = logging.getLogger(__name__)


class ReaderGone(Exception):
    """The program reading the events from standard output has closed it."""


def _stream(line: str) -> None:
    """Send one events line to standard output at once (OSError: it cannot be written)."""
    if not send(line):
        raise ReaderGone


# Names of standard output that the file checks would refuse less helpfully.
STDOUT_NAMES = {"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"}


def events_to_stdout(events) -> bool:
    """Whether ``events`` is standard output (the string "-"; a Path is always a file)."""
    return isinstance(events, str) and events == STDOUT


@dataclass
class RunSummary:
    source: str
    model: str
    device: str
    frames: int
    boxes: int  # face boxes over all frames: a face in 80 frames is 80 boxes
    counts: dict[str, int]  # those boxes by label
    seconds: float
    alerts: int = 0
    snapshots: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # output -> why it was not written
    mirror: bool = False  # the classifier also answered for each face's mirror image
    faces: int = 0  # faces seen, as the window counts them: a tracked face once

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        labels = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        found = (
            f"{self.boxes} face {'box' if self.boxes == 1 else 'boxes'} ({labels}) of "
            f"{counted(self.faces, 'face')}"
            if self.boxes
            else "no face"
        )
        return (
            f"{counted(self.frames, 'frame')}, {found}, {self.fps:.1f} FPS, "
            f"model {self.model} on {self.device}" + (", mirror on" if self.mirror else "")
        )


@dataclass
class Extras:
    """Optional headless outputs beside the video and the events.

    Attributes:
        alerts_dir: folder for alerts.jsonl and one snapshot JPEG per alert.
        alert_delay_s: how long a face must stay unmasked before it raises an alert.
        stats: CSV file for the per-second mask statistics.
        snapshots_dir: folder for every ``snapshot_every``-th annotated frame as PNG.
        snapshot_every: 0 writes no frame snapshots.
    """

    alerts_dir: Path | None = None
    alert_delay_s: float = DEFAULT_DELAY_S
    stats: Path | None = None
    snapshots_dir: Path | None = None
    snapshot_every: int = 0

    def check(self, source: str) -> None:
        """Fail before any work when an output cannot be written (whether one would be
        replaced is ``refuse_existing``'s to say).

        Nothing is created here: the alerts and snapshots folders are made once the run
        starts, so a refused command leaves no trace.
        """
        if self.alerts_dir is not None:
            check_writable(Path(self.alerts_dir) / ALERTS_FILE, overwrite=True, make_folder=True)
        if self.stats is not None:
            check_writable(Path(self.stats), overwrite=True)
        if self.snapshot_every < 0 or (self.snapshots_dir is not None and not self.snapshot_every):
            raise FlagValueError(
                f"--snapshot-every must be at least 1 with --snapshots, got {self.snapshot_every}"
            )
        if self.snapshot_every and self.snapshots_dir is None:
            raise FlagValueError(
                "--snapshot-every N needs --snapshots DIR, the folder to save into"
            )
        if self.snapshots_dir is not None:
            folder = Path(self.snapshots_dir)
            check_folder(folder)
            taken = snapshots_in(folder, source)
            for path in taken:  # replaced or removed by the run: never a model
                if kind := model_kind(path):
                    raise OutputExistsError(
                        f"{path} holds {kind}, which a report or recording never replaces; "
                        "write the snapshots elsewhere"
                    )


VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


@dataclass(frozen=True)
class _Claim:
    """The files one output writes: a single file, or the names in a folder that match a
    glob pattern (an output that writes many files)."""

    flag: str
    folder: Path
    name: str  # a file name, or a glob pattern when ``many``
    many: bool = False
    given: str = ""  # the path as typed, which messages name (not a link's target)

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def covers(self, path: Path) -> bool:
        """True when ``path`` (resolved) is, or may be, one of the files of this output."""
        if path.parent != self.folder:
            return False
        return fnmatch.fnmatchcase(path.name, self.name) if self.many else path.name == self.name

    def __str__(self) -> str:
        return f"{self.flag} ({self.path})"


def _claims(source: str, output, events, extras: Extras) -> list[_Claim]:
    def one(flag: str, path: Path, many: bool = False) -> _Claim:
        resolved = Path(path).resolve()
        return _Claim(flag, resolved.parent, resolved.name, many, str(path))

    claims = [
        one(flag, path)
        for flag, path in (("--output", output), ("--events", events), ("--stats", extras.stats))
        if path is not None and not (flag == "--events" and events_to_stdout(path))
    ]
    if extras.alerts_dir is not None:
        folder = Path(extras.alerts_dir)
        claims.append(one("--alerts", folder / ALERTS_FILE))
        claims.append(one("--alerts", folder / ALERT_SNAPSHOTS, many=True))
    if extras.snapshots_dir is not None:
        pattern = snapshot_pattern(source)
        claims.append(one("--snapshots", Path(extras.snapshots_dir) / pattern, many=True))
    return claims


def refuse_read_files(claims: list[_Claim], reads: dict) -> None:
    """Refuse an output that would write over a file the run reads (``reads``: what it is
    -> path), such as its weights: --overwrite is for earlier outputs, never for inputs."""
    for what, path in reads.items():
        try:
            target = Path(path).resolve()
        except (OSError, RuntimeError):  # a name that cannot be looked up holds nothing
            continue
        for claim in claims:
            if claim.covers(target):
                shown = claim.given if not claim.many else str(claim.folder)
                raise ValueError(
                    f"{claim.flag} {shown} would write over {what}; write it elsewhere"
                )


def _existing_file(source: str) -> Path | None:
    """The resolved path of a source that is a file here, else None."""
    try:
        return Path(source).resolve() if Path(source).exists() else None
    except OSError:  # a name too long to look up is no file the outputs could replace
        return None


def check_distinct_outputs(
    source: str, output=None, events=None, extras=None, reads: dict | None = None
) -> None:
    """Refuse an output that is the source, a folder, a file another output also writes, or
    one of ``reads`` (what -> path: files the run reads, see :func:`refuse_read_files`).

    Every file the run may write counts: alerts.jsonl and the alert JPEGs in the alerts
    folder, the frame PNGs in the snapshots folder, and the temporary names of single files.
    """
    extras = extras or Extras()
    claims = _claims(source, output, events, extras)
    folders = [Path(d).resolve() for d in (extras.alerts_dir, extras.snapshots_dir) if d]
    source_path = _existing_file(plain_source(str(source)))
    for claim in claims:
        if claim.many:
            if source_path is not None and claim.covers(source_path):
                raise ValueError(f"{claim} may replace the source {source_path}; use another")
            continue
        path = claim.path
        if path == source_path:
            raise ValueError(f"{path} is the source video; write the output elsewhere")
        if path.is_dir() and claim.flag == "--alerts":  # the user named the folder only
            raise ValueError(
                f"--alerts {extras.alerts_dir} holds a folder named {ALERTS_FILE}, where the "
                "alerts log goes; move it or give another --alerts folder"
            )
        if path.is_dir():
            raise ValueError(f"{claim.flag} {claim.given} is a folder; name a file")
        for folder in folders:
            if path == folder or path in folder.parents:
                raise ValueError(
                    f"{claim.flag} {path} is a file, but {folder} must be a folder for "
                    "another output; give each its own place"
                )
    # NOTE: two many-file outputs never collide: alert snapshots are .jpg, frames .png.
    for first, second in itertools.combinations(claims, 2):
        if first.many and second.many:
            continue
        single, other = (second, first) if first.many else (first, second)
        path = single.path
        if other.covers(path) or (not other.many and temp_name(path) == temp_name(other.path)):
            named = other if other.many else other.flag  # a folder's pattern says more
            raise ValueError(
                f"{path} is named for two outputs, {single.flag} and {named}; "
                "give each its own file"
            )
    refuse_read_files(claims, reads or {})


def check_outputs(
    source: str, output, events, extras: Extras, overwrite: bool, reads: dict | None = None
) -> None:
    """Every check on the outputs that can be made before any work; creates nothing.

    ``reads`` names the other files the run reads or that must stay as they are (what ->
    path: weights); an output that would write over one is refused, even with --overwrite.
    """
    named = {
        "--output": output,
        "--events": events,
        "--alerts": extras.alerts_dir,
        "--stats": extras.stats,
        "--snapshots": extras.snapshots_dir,
    }
    for flag, path in named.items():
        if events_to_stdout(path) and flag != "--events":
            kind = "folder" if flag in ("--alerts", "--snapshots") else "file"
            raise FlagValueError(
                f"{flag} -: standard output is offered to --events alone (the other outputs "
                f"are written whole or not at all); name a {kind}"
            )
        if path is not None and not is_utf8(str(path)):
            raise ValueError(
                f"{flag} {shown_name(str(path))}: the name is not valid UTF-8; pick another"
            )
    check_distinct_outputs(source, output, events, extras, reads)
    if output is not None and Path(output).suffix.lower() not in VIDEO_SUFFIXES:
        raise FlagValueError(f"--output {output}: use one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    if events is not None and not events_to_stdout(events):
        target = Path(events)
        pipe = target.exists() and not target.is_file() and not target.is_dir()
        if pipe or str(target) in STDOUT_NAMES:
            raise FlagValueError(
                f"--events {events} is not a regular file; name a file, stream the events "
                "to standard output with --events -, or leave --events out to write none"
            )
    files = [Path(p) for p in (output, events) if p is not None and not events_to_stdout(p)]
    for path in files:
        check_writable(path, overwrite=True)  # an existing file: refuse_existing says
    extras.check(source)
    if not overwrite:
        refuse_existing(source, files, extras)


def refuse_existing(source: str, files: list[Path], extras: Extras) -> None:
    """Name every output already there in one error: a user who wants them kept moves them
    all at once instead of learning of them one run at a time."""
    if extras.alerts_dir is not None:
        files = [*files, Path(extras.alerts_dir) / ALERTS_FILE]
    if extras.stats is not None:
        files = [*files, Path(extras.stats)]
    there = [str(path) for path in files if path.exists()]
    taken = snapshots_in(extras.snapshots_dir, source) if extras.snapshots_dir else []
    if len(taken) == 1:
        there.append(str(taken[0]))
    elif taken:
        there.append(f"{len(taken)} snapshots in {extras.snapshots_dir} ({taken[0].name}, ...)")
    if not there:
        return
    if len(there) == 1 and len(taken) < 2:
        raise OutputExistsError(f"{there[0]} already exists (pass --overwrite to replace it)")
    names = ", ".join(there[:-1]) + " and " + there[-1] if len(there) > 1 else there[0]
    raise OutputExistsError(f"{names} already exist (pass --overwrite to replace them)")


SNAPSHOT_STEM_BYTES = 200  # leaves room for "-frame000000.png" within a 255-byte name


def snapshot_stem(source: str) -> str:
    """The name that starts each frame snapshot of ``source``, one per source: a file's whole
    name with its suffix (``clip.mp4`` and ``clip.mov`` differ), ``camera0`` for a camera, a
    stream's host and path with a short digest of its shown URL (``cam1.local_live-3f2a9c``:
    no login, and ``?ch=1`` differs from ``?ch=2``). A name too long is cut and given the
    digest of the whole name, so two long names do not meet; leading dots are dropped, so
    the snapshots are not hidden files."""
    source = plain_source(str(source))
    kind = describe(source)
    if kind == "camera":
        return f"camera{source}"
    if kind == "stream":
        shown = shown_source(source)
        parts = urlsplit(shown)
        place = unquote(parts.netloc.rpartition("@")[2] + parts.path)
        stem = re.sub(r"[^\w.-]+", "_", place).strip("_.") + "-" + _digest(shown)
    else:
        stem = Path(source).name.lstrip(".") or "frame"
    if len(stem.encode(errors="surrogateescape")) <= SNAPSHOT_STEM_BYTES:
        return stem
    suffix = Path(stem).suffix if kind == "file" else ""
    tail = f"~{_digest(stem)}{suffix if len(suffix) <= 16 else ''}"
    while len((stem + tail).encode(errors="surrogateescape")) > SNAPSHOT_STEM_BYTES:
        stem = stem[:-1]
    return stem + tail


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(errors="surrogateescape")).hexdigest()[:6]


def snapshot_pattern(source: str) -> str:
    """A glob matching every frame snapshot name of ``source`` (see ``run_headless``), and
    a few more: the claims on names that outputs may not share err on the safe side."""
    return f"{glob.escape(snapshot_stem(source))}-frame*.png"


def snapshots_in(folder: Path, source: str) -> list[Path]:
    """The frame snapshots of ``source`` in ``folder``: exactly the names a run gives them
    (``STEM-frame000120.png``), never another file that merely starts the same way."""
    if not Path(folder).is_dir():
        return []
    name = re.compile(re.escape(snapshot_stem(source)) + r"-frame(?:[0-9]{6}|[1-9][0-9]{6,})\.png")
    return sorted(p for p in Path(folder).iterdir() if name.fullmatch(p.name))


def run_headless(
    pipeline: Pipeline | TrackingPipeline,
    source: str,
    output: Path | None = None,
    events: Path | None = None,
    overwrite: bool = False,
    max_frames: int | None = None,
    progress: bool = True,
    extras: Extras | None = None,
) -> RunSummary:
    """Process ``source`` to the end (or ``max_frames``) and write the requested outputs.

    Outputs appear under their final names only when the run completes; one that fails on
    the way is dropped with a warning (named in ``RunSummary.failed``) and the others are
    still written. A run that stops early leaves no output at all. Events sent to standard
    output (``events`` is "-") go out frame by frame; when their reader leaves, the run ends
    there if it has no other output, else it goes on without them.
    """
    extras = extras or Extras()
    check_outputs(source, output, events, extras, overwrite)
    monitor = AlertMonitor(extras.alert_delay_s) if extras.alerts_dir is not None else None
    face_stats = FaceStats() if extras.stats is not None else None
    alerts: list[Alert] = []
    outputs = RunOutputs(overwrite)
    with contextlib.ExitStack() as stack:
        stack.callback(outputs.close)
        video = stack.enter_context(VideoSource(source))
        info = video.info
        kept = (output, events, extras.alerts_dir, extras.stats, extras.snapshots_dir)
        if all(path is None for path in kept):  # said once the source is known to play
            log.warning("neither --output nor --events given: results are only summarised")
        if extras.snapshots_dir is not None:
            outputs.make_folder("snapshots", Path(extras.snapshots_dir), "*.png")
        writer = None
        if output is not None:
            writer = _open_writer(outputs.temp("video", Path(output)), Path(output), info)
            stack.callback(writer.release)
        event_file = None
        streaming = events_to_stdout(events)
        others = [output, extras.alerts_dir, extras.stats, extras.snapshots_dir]
        if events is not None and not streaming:
            tmp_events = outputs.temp("events", Path(events))
            event_file = stack.enter_context(open(tmp_events, "w", encoding="utf-8"))
        total = info.frame_count or None
        if max_frames:
            total = min(total or max_frames, max_frames)
        bar = stack.enter_context(
            tqdm(
                total=total,
                unit="frame",
                disable=not progress,
                desc=source_title(source),
                leave=False,
            )
        )
        frames, boxes, counts, snapshots = 0, 0, {}, 0
        tracks: set[int] = set()  # the faces seen: tracks, and each untracked box apart
        untracked = 0
        reader_gone = False

        def events_ended() -> bool:
            """The events stream has no one to go to: its reader left, or it failed."""
            return streaming and (reader_gone or not outputs.live("events"))

        colour = ColourWatch()
        start = time.perf_counter()
        for frame in video.frames():
            if max_frames and frames >= max_frames:
                break
            result = pipeline.process(frame)
            time_s = video.time_s()
            _say_colour_change(colour, frame, time_s)
            record = {
                "frame": frames,
                "time_s": round(time_s, 4),
                "faces": [f.as_event() for f in result.faces],
            }
            if event_file is not None and outputs.live("events"):
                outputs.attempt("events", event_file.write, json.dumps(record) + "\n")
            if streaming and outputs.live("events") and not reader_gone:
                try:
                    outputs.attempt("events", _stream, json.dumps(record))
                except ReaderGone:
                    reader_gone = True
                    log.warning(
                        "the reader of the events on standard output has gone after %s%s",
                        counted(frames, "frame"),
                        "; the other outputs go on" if any(others) else "",
                    )
                if events_ended() and not any(others):
                    break  # nothing left to write: the run has no more use
            if monitor is not None:
                alerts += monitor.update(time_s, result.faces, frame)
            if face_stats is not None:
                face_stats.add(time_s, result.faces)
            snap = (
                extras.snapshot_every
                and frames % extras.snapshot_every == 0
                and outputs.live("snapshots")
            )
            if writer is not None or snap:
                if frame.shape[1] != info.width or frame.shape[0] != info.height:
                    frame = cv2.resize(frame, (info.width, info.height))
                elapsed = time.perf_counter() - start
                draw_faces(frame, result.faces, (frames + 1) / max(elapsed, 1e-6))
            if writer is not None:
                writer.write(frame)
            if snap:
                name = f"{snapshot_stem(source)}-frame{frames:06d}.png"
                final = Path(extras.snapshots_dir) / name
                outputs.attempt("snapshots", write_image, outputs.temp("snapshots", final), frame)
            frames += 1
            boxes += len(result.faces)
            tracks.update(f.track_id for f in result.faces if f.track_id is not None)
            untracked += sum(f.track_id is None for f in result.faces)
            for label, n in result.counts().items():
                counts[label] = counts.get(label, 0) + n
            bar.update(1)
        seconds = time.perf_counter() - start
        # A run stopped on purpose (the frame limit, the events' reader gone) did not see the
        # source end, so it has nothing to say about the source.
        stopped = bool(max_frames and frames >= max_frames) or (events_ended() and not any(others))
        if not video.recorded and not stopped:
            shown = shown_source(str(source))
            log.warning(
                "%s %s stopped delivering frames after %s",
                video.kind,
                shown,
                counted(frames, "frame"),
            )
        elif not stopped and (note := video.cut_off_note()):
            log.warning("%s; the outputs cover the frames that were read", note)
        # The run is complete: each output takes its final name on its own.
        if writer is not None:
            writer.release()
            outputs.finish("video", lambda tmp, final: check_video_complete(tmp, final, frames))
        if event_file is not None:
            outputs.attempt("events", event_file.close)
            outputs.finish("events")
        if face_stats is not None:
            tmp_stats = outputs.temp("stats", Path(extras.stats))
            outputs.attempt("stats", _write_text, tmp_stats, face_stats.to_csv())
            outputs.finish("stats")
        if extras.alerts_dir is not None:
            _write_alerts(outputs, AlertLog(extras.alerts_dir), alerts)
        snapshots = outputs.finish("snapshots")
        if overwrite and extras.snapshots_dir is not None and outputs.live("snapshots"):
            # Listed now, not at the start: a run that finished meanwhile is replaced too.
            earlier = set(snapshots_in(Path(extras.snapshots_dir), source))
            remove_replaced(earlier - outputs.placed("snapshots"), "frame snapshots")
    return RunSummary(
        str(source),
        pipeline.active,
        str(pipeline.device),
        frames,
        boxes,
        counts,
        seconds,
        len(alerts),
        snapshots,
        dict(outputs.failed),
        pipeline.mirror,
        len(tracks) + untracked,
    )


def _say_colour_change(colour: ColourWatch, frame: np.ndarray, time_s: float) -> None:
    """Log the grey note when the picture first loses its colour, and one line for each
    later change (a day/night camera that switches back and forth)."""
    change = colour.update(frame, time_s)
    if change is None:
        return
    if change and colour.grey_turns == 1:
        log.warning("%s%s", f"from {time_s:.1f} s on, " if time_s > 0 else "", GREY_NOTE)
    else:
        state = "no colour" if change else "colour"
        log.warning("from %.1f s on, the picture has %s again", time_s, state)


def _write_alerts(outputs: RunOutputs, alert_log: AlertLog, alerts: list[Alert]) -> None:
    """Write alerts.jsonl and the alert JPEGs; they take their final names all or none."""
    if not outputs.make_folder("alerts", alert_log.folder, ALERTS_FILE, ALERT_SNAPSHOTS):
        return
    earlier = alert_log.earlier_snapshots()  # exists only with --overwrite
    files = alert_log.files(alerts)
    for final, write in files:
        if not outputs.attempt("alerts", write, outputs.temp("alerts", final)):
            return
    if not outputs.finish("alerts"):
        return
    remove_replaced(earlier - {final for final, _ in files}, "alert snapshots")


def remove_replaced(stale: set[Path], what: str) -> None:
    """Remove an earlier run's files that an --overwrite run replaced but did not write
    again, so that a folder never mixes two runs."""
    for path in sorted(stale):
        if kind := model_kind(path):  # named like one of ours since the run began
            log.warning("kept %s: it holds %s, not one of the earlier run's %s", path, kind, what)
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove the earlier run's %s: %s", path, exc.strerror)
    if stale:
        log.info("removed %d %s of the earlier run", len(stale), what)


def _write_text(path: Path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def _open_writer(tmp: Path, output: Path, info) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(
        ffmpeg_name(tmp), cv2.VideoWriter_fourcc(*FOURCC), info.fps, (info.width, info.height)
    )
    if not writer.isOpened():
        raise writer_refused(output, info.width, info.height)
    return writer
