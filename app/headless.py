"""Headless mode: run the pipeline over a source, write the annotated video and events.

Events are JSON Lines, one object per frame:
``{"frame": 0, "time_s": 0.0, "faces": [{"box": [x1, y1, x2, y2], "label": "mask", "score": 0.98}]}``
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from app.atomic import atomic_path, check_writable
from app.overlay import draw_faces
from app.pipeline import Pipeline
from app.source import VideoSource
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

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        labels = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"
        return (f"{self.frames} frames, {self.faces} faces ({labels}), "
                f"{self.fps:.1f} FPS, model {self.model} on {self.device}")


def run_headless(pipeline: Pipeline | TrackingPipeline, source: str, output: Path | None = None,
                 events: Path | None = None, overwrite: bool = False,
                 max_frames: int | None = None, progress: bool = True) -> RunSummary:
    """Process ``source`` to the end (or ``max_frames``) and write the requested outputs.

    Outputs appear under their final names only when the run completes.
    """
    for path in (output, events):
        if path is not None:
            check_writable(Path(path), overwrite)
    with contextlib.ExitStack() as stack:
        video = stack.enter_context(VideoSource(source))
        info = video.info
        writer = None
        if output is not None:
            tmp_video = stack.enter_context(atomic_path(Path(output)))
            writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"),
                                     info.fps, (info.width, info.height))
            if not writer.isOpened():
                raise OSError(f"cannot write video {output}")
            stack.callback(writer.release)
        event_file = None
        if events is not None:
            tmp_events = stack.enter_context(atomic_path(Path(events)))
            event_file = stack.enter_context(open(tmp_events, "w", encoding="utf-8"))
        total = info.frame_count or None
        if max_frames:
            total = min(total or max_frames, max_frames)
        bar = stack.enter_context(tqdm(total=total, unit="frame", disable=not progress,
                                       desc=Path(str(source)).name, leave=False))
        frames, faces, counts = 0, 0, {}
        start = time.perf_counter()
        for frame in video.frames():
            if max_frames and frames >= max_frames:
                break
            result = pipeline.process(frame)
            if event_file is not None:
                record = {"frame": frames, "time_s": round(video.position_s(frames), 4),
                          "faces": [f.as_event() for f in result.faces]}
                event_file.write(json.dumps(record) + "\n")
            if writer is not None:
                if frame.shape[1] != info.width or frame.shape[0] != info.height:
                    frame = cv2.resize(frame, (info.width, info.height))
                elapsed = time.perf_counter() - start
                writer.write(draw_faces(frame, result.faces, (frames + 1) / max(elapsed, 1e-6)))
            frames += 1
            faces += len(result.faces)
            for label, n in result.counts().items():
                counts[label] = counts.get(label, 0) + n
            bar.update(1)
        seconds = time.perf_counter() - start
        if writer is not None:
            writer.release()
    return RunSummary(str(source), pipeline.active, str(pipeline.device), frames, faces,
                      counts, seconds)
