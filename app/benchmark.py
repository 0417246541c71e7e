"""Speed benchmark: ``python -m app.benchmark``; prints tables and writes them as JSON.

Three tables: classifier crops/s (teacher vs student, batch 1/8/32, CPU and CUDA when
present); detector milliseconds per frame for the settings the app offers; end to end on the
real clips (each fitted into 640x480) for the naive path (detect every frame at full size) and
the app's default path: frames/s processed flat out, and a live run fed as a camera delivering
--camera-fps frames a second (default 30), with frames/s displayed and glass-to-box latency
(capture to overlay drawn).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from app.atomic import check_writable, describe_error
from app.config import SENSITIVITY, DetectorConfig, PipelineConfig, TrackingConfig, with_sensitivity
from app.console import error, exit_status, guard_streams, log_to_stderr, say, tell
from app.cpu_load import BUSY_CORES, OtherLoad
from app.flags import (
    FlagValueError,
    OneLineParser,
    input_path,
    named,
    output_file,
    require_counts,
)
from app.overlay import draw_faces
from app.pipeline import Pipeline
from app.source import SourceError, VideoSource, shown_name
from app.stop_signals import stop_message, stoppable
from app.tracking import TrackingPipeline
from models import checkpoint
from models.detector_checkpoint import DEFAULT_DETECTOR
from training.outputs import refuse_inputs, save_after_work, strict_json
from training.speed import crops_per_second

PROG = "app.benchmark"  # how its one-line complaints begin
log = logging.getLogger(PROG)  # not "__main__" when run with -m

BATCHES = (1, 8, 32)
# (weights, sensitivity, scale, min face, near face); "stock" rows are MTCNN as shipped with
# its own thresholds (0.6 / 0.7 / 0.7, score 0.9): what the app ran before the tuned
# detector. The tuned rows with near face 0 show what the stock pass for near faces costs.
NEAR_FACE = DetectorConfig().near_face
DETECTOR_SETTINGS = (
    [
        ("tuned", sensitivity, scale, min_face, NEAR_FACE)
        for sensitivity in SENSITIVITY
        for scale in (1.0, 0.75, 0.5)
        for min_face in (12, 20, 40)
    ]
    + [("tuned", "standard", 1.0, min_face, 0) for min_face in (12, 20, 40)]
    + [("stock", "stock", 1.0, min_face, 0) for min_face in (12, 20, 40)]
)
STOCK_DETECTOR = DetectorConfig(thresholds=(0.6, 0.7, 0.7), min_score=0.9, weights="stock")
LIVE_SIZE = (640, 480)
PATHS = {
    "naive": (
        DetectorConfig(max_side=0),
        TrackingConfig(detect_every=1, smooth_window=1, max_misses=0),
    ),
    "default": (DetectorConfig(), TrackingConfig()),
}


def fit_frame(frame: np.ndarray, size=LIVE_SIZE) -> np.ndarray:
    """Resize a frame to fit inside ``size`` keeping its aspect (a 640x480 source)."""
    h, w = frame.shape[:2]
    scale = min(size[0] / w, size[1] / h)
    if abs(scale - 1.0) < 1e-3:
        return frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # never 0 for a thin frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def classifier_table(devices: list[torch.device], seconds: float) -> list[dict]:
    rows = []
    for device in devices:
        for batch in BATCHES:
            row = {"device": str(device), "batch": batch}
            for arch in ("teacher", "student"):
                model, meta = checkpoint.load(checkpoint.default_weights(arch), arch)
                row[arch] = crops_per_second(
                    model, meta.input_size, batch, device, seconds, half=device.type == "cuda"
                )
            row["ratio"] = row["student"] / row["teacher"]
            rows.append(row)
    return rows


def detector_table(frame_rgb: np.ndarray, device: torch.device, repeats: int) -> list[dict]:
    from app.detector import FaceDetector

    detectors = {
        "tuned": FaceDetector(DetectorConfig(max_side=0), device),
        "stock": FaceDetector(replace(STOCK_DETECTOR, max_side=0), device),
    }
    rows = []
    for weights, sensitivity, scale, min_face, near_face in DETECTOR_SETTINGS:
        detector = detectors[weights]
        config = DetectorConfig(
            scale=scale, min_face_size=min_face, max_side=0, near_face=near_face
        )
        if weights == "stock":
            config = replace(STOCK_DETECTOR, min_face_size=min_face, max_side=0)
        else:
            config = with_sensitivity(config, sensitivity)
        detector.configure(config)
        detector.detect(frame_rgb)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            faces = detector.detect(frame_rgb)
            times.append((time.perf_counter() - start) * 1000)
        rows.append(
            {
                "weights": weights,
                "sensitivity": sensitivity,
                "scale": scale,
                "min_face": min_face,
                "near_face": near_face,
                "ms": statistics.median(times),
                "faces": len(faces),
            }
        )
    return rows


def processed_fps(tracker: TrackingPipeline, path: Path, max_frames: int) -> float:
    """Frames per second decoded, fitted, processed and drawn, flat out, as headless runs.

    The clip's first frame goes through once untimed: one-off costs (the near-face pass
    builds its nets on first use, PyTorch sizes its buffers) would otherwise weigh on a short
    run, which then read slower than the live run that follows it.
    """
    with VideoSource(str(path)) as video:
        if (frame := video.read()) is not None:
            tracker.process(fit_frame(frame))
    tracker.reset()
    frames, start = 0, time.perf_counter()
    with VideoSource(str(path)) as video:
        while frames < max_frames and (frame := video.read()) is not None:
            frame = fit_frame(frame)
            draw_faces(frame, tracker.process(frame).faces)
            frames += 1
    return frames / (time.perf_counter() - start)


def live_run(tracker: TrackingPipeline, path: Path, seconds: float, camera_fps: float) -> dict:
    """Play ``path`` as a ``camera_fps`` camera through a newest-frame-only capture thread,
    as the window does.

    Returns frames/s displayed and the latency from capture to overlay drawn.
    """
    from app.capture import CaptureThread, LatestFrame

    tracker.reset()
    mailbox, stop = LatestFrame(), threading.Event()
    source = VideoSource(str(path))
    source.info.fps = camera_fps  # frames are delivered at the camera's rate, not the file's
    thread = CaptureThread(source, mailbox, stop, lambda: False, fit_frame)
    thread.start()
    latencies, start = [], time.perf_counter()
    try:
        while time.perf_counter() - start < seconds and not mailbox.drained:
            item = mailbox.take(0.2)
            if item is None:
                continue
            draw_faces(item.frame, tracker.process(item.frame).faces)
            latencies.append((time.perf_counter() - item.captured_at) * 1000)
        elapsed = time.perf_counter() - start
    finally:  # also on Ctrl-C: the capture thread releases the clip
        stop.set()
        thread.join()
    return {
        "displayed_fps": len(latencies) / elapsed,
        "latency_ms": statistics.mean(latencies) if latencies else None,
        "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
        "dropped": mailbox.dropped,
    }


def first_frame(path: Path) -> tuple[np.ndarray, float, tuple[int, int]]:
    with VideoSource(str(path)) as video:
        return fit_frame(video.read()), video.info.fps, (video.info.width, video.info.height)


def mp4_clips(videos: Path) -> list[Path]:
    """The .mp4 files in ``videos`` (the suffix in any case: phones write .MP4), sorted."""
    return sorted(p for p in videos.glob("*") if p.suffix.lower() == ".mp4")


def clip_table(
    videos: Path,
    device: torch.device,
    max_frames: int,
    live_seconds: float,
    camera_fps: float,
    clips: list[str] | None,
    progress: bool,
) -> tuple[list[dict], list[dict]]:
    """One row per clip that plays, and the clips that could not be read, each with why."""
    paths = mp4_clips(videos) if not clips else [videos / c for c in clips]
    trackers = {}
    for name, (detector, tracking) in PATHS.items():
        config = PipelineConfig(detector=detector, tracking=tracking, device=str(device))
        trackers[name] = TrackingPipeline(Pipeline(config), tracking)
    rows, skipped = [], []
    for path in tqdm(paths, desc="clips", unit="clip", disable=not progress):
        try:
            frame, fps, size = first_frame(path)
            row = {
                "clip": shown_name(path.name),
                "source": f"{size[0]}x{size[1]}",
                "processed": f"{frame.shape[1]}x{frame.shape[0]}",
                "fps": fps,
            }
            for name, tracker in trackers.items():
                row[name] = {
                    "processed_fps": processed_fps(tracker, path, max_frames),
                    **live_run(tracker, path, live_seconds, camera_fps),
                }
        except SourceError as exc:  # one bad clip does not cost the others' figures
            log.warning("skipped %s: %s", path.name, exc)
            skipped.append({"clip": shown_name(path.name), "reason": str(exc)})
            continue
        rows.append(row)
    if paths and not rows:
        raise SourceError(f"none of the {len(paths)} clips in {videos} could be read")
    return rows, skipped


def detector_frame(videos: Path) -> tuple[np.ndarray, str]:
    """The frame the detector is timed on and where it comes from: the laptop clip's first
    frame, else the first readable clip's, else a blank frame (with a warning: it holds no
    face, so the figure says little)."""
    preferred = videos / "masked-woman-laptop.mp4"
    candidates = [preferred] if preferred.exists() else []
    candidates += [p for p in mp4_clips(videos) if p != preferred]
    for path in candidates:
        try:
            return first_frame(path)[0], path.name
        except SourceError as exc:  # the clips' own table warns about it
            log.debug("detector frame: skipped %s: %s", path.name, exc)
    log.warning("no readable clip in %s: the detector is timed on a blank frame, no face", videos)
    return np.full((480, 640, 3), 127, np.uint8), "blank frame"


def rate(crops_per_s: float) -> str:
    """Crops/s for the table: whole numbers, but a slow rate (a busy machine's teacher at
    batch 1) keeps the digits that tell it from nothing."""
    return f"{crops_per_s:.0f}" if crops_per_s >= 10 else f"{crops_per_s:.2g}"


def print_tables(result: dict) -> None:
    say("Classifier crops/s (student/teacher ratio measured in the same run)")
    say(f"{'device':8} {'batch':>5} {'teacher':>10} {'student':>10} {'ratio':>7}")
    for r in result["classifier"]:
        say(
            f"{r['device']:8} {r['batch']:5d} {rate(r['teacher']):>10} "
            f"{rate(r['student']):>10} {r['ratio']:7.1f}"
        )
    where = f"{result['detector_frame']} from {result['detector_frame_from']}"
    say(f"\nDetector ms per frame ({where}, {result['device']})")
    say(
        f"{'weights':>7} {'sensitivity':>11} {'scale':>6} {'min face':>9} {'near face':>9} "
        f"{'ms':>8} {'faces':>6}"
    )
    for r in result["detector"]:
        near = str(r["near_face"] or "off")
        say(
            f"{r['weights']:>7} {r['sensitivity']:>11} {r['scale']:6.2f} {r['min_face']:9d} "
            f"{near:>9} {r['ms']:8.1f} {r['faces']:6d}"
        )
    if result["clips"]:
        print_clips(result)
    other = result.get("other_cores")
    if other is not None and other > BUSY_CORES:  # nan and null are not
        say(
            f"\nNote: other programs kept {other:.1f} cores busy on average during this run, "
            "so these figures are lower than this machine gives when idle"
        )


def print_clips(result: dict) -> None:
    say(
        f"\nEnd to end (frames fitted into 640x480): processed FPS flat out (decode, detect, "
        f"classify, draw); live run as a {result['camera_fps']:.0f} FPS camera: displayed FPS, "
        "glass-to-box latency mean / p95 ms"
    )
    head = f"{'clip':36} {'src fps':>7}"
    for name in PATHS:
        head += f" | {name + ' proc':>12} {'disp':>6} {'lat':>6} {'p95':>6}"
    say(head)
    for r in result["clips"]:
        line = f"{r['clip']:36} {r['fps']:7.1f}"
        for name in PATHS:
            p = r[name]
            line += (
                f" | {p['processed_fps']:12.1f} {p['displayed_fps']:6.1f} "
                f"{p['latency_ms'] or 0:6.0f} {p['latency_p95_ms'] or 0:6.0f}"
            )
        say(line)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse settings that would time nothing, before any table is measured."""
    for flag, value in (
        ("--seconds", args.seconds),
        ("--live-seconds", args.live_seconds),
        ("--camera-fps", args.camera_fps),
    ):
        if not value > 0 or value == float("inf"):
            raise FlagValueError(f"{flag} must be a number above 0, got {value}")
    require_counts(("--max-frames", args.max_frames), ("--repeats", args.repeats))
    if args.skip_clips and args.clips:
        raise FlagValueError("--clips names clips that --skip-clips would not play; give one")
    if args.skip_clips:
        return
    if not args.videos.is_dir():
        raise FileNotFoundError(f"--videos {args.videos} is not a folder (or add --skip-clips)")
    missing = [c for c in args.clips or [] if not (args.videos / c).is_file()]
    if missing:
        raise FileNotFoundError(f"clip {missing[0]} is not in {args.videos}")
    if not args.clips and not mp4_clips(args.videos):
        raise FileNotFoundError(f"--videos {args.videos} holds no .mp4 clips")
    paths = [args.videos / c for c in args.clips] if args.clips else mp4_clips(args.videos)
    for path in paths:
        try:
            first_frame(path)
            return
        except SourceError:
            continue
    raise SourceError(f"none of the {len(paths)} clips in {args.videos} could be read")


def check_json(args: argparse.Namespace) -> None:
    """Refuse a --json that is a file the run reads or exists (without --overwrite)."""
    clips = [args.videos / c for c in args.clips] if args.clips else mp4_clips(args.videos)
    refuse_inputs(
        args.json,
        "--json",
        {
            "weights": [checkpoint.default_weights(arch) for arch in ("teacher", "student")],
            "detector weights": DEFAULT_DETECTOR,
            "clip": [] if args.skip_clips else clips,
        },
    )
    check_writable(args.json, args.overwrite)


@stoppable  # SIGTERM and SIGHUP stop it as Ctrl-C does
def main(argv: list[str] | None = None) -> int:
    guard_streams()
    p = OneLineParser(prog=f"python -m {PROG}", description=__doc__)
    p.add_argument(
        "--videos",
        type=input_path,
        default=Path("../shared/data/videos"),
        help="folder of .mp4 clips for the clip tables (default ../shared/data/videos)",
    )
    p.add_argument(
        "--clips", nargs="+", type=named("a clip"), help="clip file names (default: every .mp4)"
    )
    p.add_argument("--json", type=output_file, help="write the tables here as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    p.add_argument(
        "--seconds", type=float, default=1.5, help="per classifier measurement (default 1.5)"
    )
    p.add_argument(
        "--max-frames", type=int, default=150, help="frames per clip, flat out (default 150)"
    )
    p.add_argument(
        "--live-seconds", type=float, default=6.0, help="live run per clip and path (default 6)"
    )
    p.add_argument(
        "--camera-fps",
        type=float,
        default=30.0,
        help="the live run delivers frames at this rate (default 30)",
    )
    p.add_argument("--repeats", type=int, default=10, help="detector runs per setting (default 10)")
    p.add_argument("--skip-clips", action="store_true", help="classifier and detector only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    log_to_stderr(logging.WARNING)
    try:
        check_arguments(args)
        if args.json:
            check_json(args)
        load = OtherLoad()
        devices = [torch.device("cpu")] + (
            [torch.device("cuda")] if torch.cuda.is_available() else []
        )
        device = devices[-1]
        frame, frame_source = detector_frame(args.videos)
        clips, skipped = (
            ([], [])
            if args.skip_clips
            else clip_table(
                args.videos,
                device,
                args.max_frames,
                args.live_seconds,
                args.camera_fps,
                args.clips,
                not args.quiet,
            )
        )
        result = {
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # PASSIVE unless the user set it
            "device": str(device),
            "camera_fps": args.camera_fps,
            "classifier": classifier_table(devices, args.seconds),
            "detector_frame": f"{frame.shape[1]}x{frame.shape[0]}",
            "detector_frame_from": frame_source,
            "detector": detector_table(
                cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), device, args.repeats
            ),
            "clips": clips,
            "skipped": skipped,  # clips that could not be read, each with why
        }
        result["other_cores"] = round(load.cores(), 2)  # nan (null) where /proc is not read
        written = 0
        if args.json:  # before the tables, so kept even if `| head`
            lost = "the tables were not saved"
            written = save_after_work(PROG, args.json, strict_json(result), args.overwrite, lost)
        print_tables(result)
        return written
    except (SourceError, OSError, ValueError) as exc:
        error(PROG, describe_error(exc))
        return 2
    except KeyboardInterrupt as exc:
        said, status = stop_message(exc)
        tell(PROG, f"{said}; nothing was written")
        return status


if __name__ == "__main__":
    sys.exit(exit_status(main(), PROG))
