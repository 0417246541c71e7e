"""Headless mode: run the pipeline over a source, write the annotated video and events.

Optionally also alerts for faces that stay unmasked, per-second statistics as CSV and every
n-th annotated frame as PNG.

Events are JSON Lines, one object per frame:
``{"frame": 0, "time_s": 0.0,
"faces": [{"box": [x1, y1, x2, y2], "label": "mask", "score": 0.98}]}``
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from app.alerts import DEFAULT_DELAY_S, Alert, AlertLog, AlertMonitor
from app.atomic import OutputExistsError, check_writable, final_name
from app.overlay import draw_faces
from app.pipeline import Pipeline
from app.recording import check_video_complete
from app.run_outputs import RunOutputs
from app.source import VideoSource
from app.stats import FaceStats
from app.tracking import TrackingPipeline

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    source: str
    model: str
    device: str
    frames: int
    faces: int
    counts: dict[str, int]
    seconds: float
    alerts: int = 0
    snapshots: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # output -> why it was not written

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        labels = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"
        return (
            f"{self.frames} frames, {self.faces} faces ({labels}), "
            f"{self.fps:.1f} FPS, model {self.model} on {self.device}"
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

    def check(self, source: str, overwrite: bool) -> None:
        """Fail before any work when an output cannot be written or would be replaced."""
        if self.alerts_dir is not None:
            AlertLog(self.alerts_dir).check(overwrite)
        if self.stats is not None:
            check_writable(Path(self.stats), overwrite)
        if self.snapshot_every < 0:
            raise ValueError(f"--snapshot-every must be at least 1, got {self.snapshot_every}")
        if bool(self.snapshot_every) != (self.snapshots_dir is not None):
            raise ValueError("--snapshot-every N and --snapshots DIR go together")
        if self.snapshots_dir is not None:
            folder = Path(self.snapshots_dir)
            folder.mkdir(parents=True, exist_ok=True)
            taken = sorted(folder.glob(f"{snapshot_stem(source)}-frame*.png"))
            if taken and not overwrite:
                raise OutputExistsError(
                    f"{taken[0]} already exists (pass --overwrite to replace the snapshots)"
                )


VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv"}


def check_distinct_outputs(source: str, outputs: list) -> None:
    """Refuse an output that is the source, or two outputs that are one file."""
    seen: set[Path] = set()
    source_path = Path(str(source)).resolve() if Path(str(source)).exists() else None
    for path in outputs:
        if path is None:
            continue
        resolved = Path(path).resolve()
        if resolved == source_path:
            raise ValueError(f"{path} is the source video; write the output elsewhere")
        if resolved in seen:
            raise ValueError(f"{path} is named for two outputs; give each its own file")
        if resolved.is_dir():
            raise ValueError(f"{path} is a folder; name a file")
        seen.add(resolved)


SNAPSHOT_STEM_BYTES = 200  # leaves room for "-frame000000.png" within a 255-byte name


def snapshot_stem(source: str) -> str:
    """The source's name, shortened if needed, that starts each snapshot's file name."""
    stem = Path(str(source)).stem or "frame"
    while len(stem.encode()) > SNAPSHOT_STEM_BYTES:
        stem = stem[:-1]
    return stem


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
    still written. A run that stops early leaves no output at all.
    """
    extras = extras or Extras()
    check_distinct_outputs(source, [output, events, extras.stats])
    if output is not None and Path(output).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--output {output}: use one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    for path in (output, events):
        if path is not None:
            check_writable(Path(path), overwrite)
    extras.check(source, overwrite)
    monitor = AlertMonitor(extras.alert_delay_s) if extras.alerts_dir is not None else None
    face_stats = FaceStats() if extras.stats is not None else None
    alerts: list[Alert] = []
    outputs = RunOutputs(overwrite)
    with contextlib.ExitStack() as stack:
        stack.callback(outputs.discard)
        video = stack.enter_context(VideoSource(source))
        info = video.info
        writer = None
        if output is not None:
            writer = _open_writer(outputs.temp("video", Path(output)), Path(output), info)
            stack.callback(writer.release)
        event_file = None
        if events is not None:
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
                desc=Path(str(source)).name,
                leave=False,
            )
        )
        frames, faces, counts, snapshots = 0, 0, {}, 0
        start = time.perf_counter()
        for frame in video.frames():
            if max_frames and frames >= max_frames:
                break
            result = pipeline.process(frame)
            time_s = video.position_s(frames)
            if event_file is not None and outputs.live("events"):
                record = {
                    "frame": frames,
                    "time_s": round(time_s, 4),
                    "faces": [f.as_event() for f in result.faces],
                }
                outputs.attempt("events", event_file.write, json.dumps(record) + "\n")
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
                outputs.attempt("snapshots", _write_png, outputs.temp("snapshots", final), frame)
            frames += 1
            faces += len(result.faces)
            for label, n in result.counts().items():
                counts[label] = counts.get(label, 0) + n
            bar.update(1)
        seconds = time.perf_counter() - start
        if video.kind != "file" and not (max_frames and frames >= max_frames):
            log.warning("%s %s stopped delivering frames after %d", video.kind, source, frames)
        # The run is complete: each output takes its final name on its own.
        if writer is not None:
            writer.release()
            outputs.finish("video", lambda tmp, final: check_video_complete(tmp, final, frames))
        if event_file is not None:
            outputs.attempt("events", event_file.close)
            outputs.finish("events")
        if face_stats is not None:
            outputs.attempt("stats", face_stats.write_csv, Path(extras.stats), overwrite)
        if extras.alerts_dir is not None:
            outputs.attempt("alerts", AlertLog(extras.alerts_dir).write_all, alerts, overwrite)
        snapshots = outputs.finish("snapshots")
    return RunSummary(
        str(source),
        pipeline.active,
        str(pipeline.device),
        frames,
        faces,
        counts,
        seconds,
        len(alerts),
        snapshots,
        dict(outputs.failed),
    )


def _open_writer(tmp: Path, output: Path, info) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(
        str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), info.fps, (info.width, info.height)
    )
    if not writer.isOpened():
        raise OSError(
            f"cannot write video {output} ({info.width}x{info.height} frames; "
            "OpenCV's mp4v writer needs at least 2x2)"
            if min(info.width, info.height) < 2
            else f"cannot write video {output}"
        )
    return writer


def _write_png(path: Path, frame) -> None:
    if not cv2.imwrite(str(path), frame):
        raise OSError(f"cannot write image {final_name(path)}")
