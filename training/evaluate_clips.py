"""Label shares on the real clips whose expected label holds throughout.

``python -m training.evaluate_clips --videos ../shared/data/videos`` runs the app's pipeline
over every frame of each clip and reports how many face detections got the expected label.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from app.atomic import check_writable, describe_error
from app.config import DetectorConfig, PipelineConfig, TrackingConfig
from app.console import error, exit_status, guard_streams, log_to_stderr, say, tell
from app.detector_flags import add_detector_flags, detector_file, detector_of
from app.flags import (
    FlagValueError,
    OneLineParser,
    device,
    input_path,
    output_file,
    require_counts,
    require_detect_scale,
)
from app.pipeline import Pipeline
from app.source import CLIP_SUFFIXES, SourceError, VideoSource
from app.stop_signals import stop_message, stoppable
from app.tracking import TrackingPipeline
from models.checkpoint import CheckpointError, default_weights
from training.outputs import refuse_inputs, save_after_work, strict_json

log = logging.getLogger(__name__)

PROG = "training.evaluate_clips"

# Clips of ../shared/data/videos whose faces keep one label for the whole clip.
EXPECTED = {
    "masked-woman-laptop.mp4": "mask",
    "unmasked-man-outdoors.mp4": "no_mask",
    "medical-staff-masked-portrait.mp4": "mask",
    "unmasked-man-white-background.mp4": "no_mask",
    "selfie-unmasked-then-chin.mp4": "no_mask",
    "cctv-corridor-masked.mp4": "mask",
    "street-queue-crowd-masked.mp4": "mask",
}


def unscored_clips(videos: Path) -> list[str]:
    """Clips in ``videos`` this command does not score: only the shared clips whose faces
    keep one known label are (a label share means nothing where a mask goes on part way)."""
    try:
        names = [p.name for p in videos.iterdir() if p.suffix.lower() in CLIP_SUFFIXES]
    except OSError:  # measure() says what is wrong with the folder
        return []
    return sorted(name for name in names if name not in EXPECTED)


class FlickerCount:
    """Label changes per face per second, for the shown (smoothed) and the raw labels."""

    def __init__(self):
        self.last: dict[tuple[str, int], str] = {}
        self.changes = {"shown": 0, "raw": 0}
        self.face_frames = 0

    def add(self, track_id: int, shown: str, raw: str) -> None:
        self.face_frames += 1
        for kind, label in (("shown", shown), ("raw", raw)):
            previous = self.last.get((kind, track_id))
            self.changes[kind] += previous is not None and previous != label
            self.last[(kind, track_id)] = label

    def per_face_second(self, fps: float) -> dict[str, float | None]:
        seconds = self.face_frames / fps
        return {k: (v / seconds if seconds else None) for k, v in self.changes.items()}


def clip_shares(
    pipeline: TrackingPipeline,
    path: Path,
    expected: str,
    progress: bool = True,
    max_frames: int | None = None,
) -> dict:
    """Share of face detections labelled ``expected`` in one clip, shown and raw, and flicker.

    "raw" is the classifier's answer on that frame alone; "shown" is the tracked, smoothed
    label the overlay draws. Both come from the same detections in one pass.
    """
    frames = faces = hits = raw_hits = 0
    flicker = FlickerCount()
    pipeline.reset()
    start = time.perf_counter()
    with VideoSource(str(path)) as video:
        fps = video.info.fps
        total = video.info.frame_count or None
        if max_frames and total:
            total = min(total, max_frames)
        for frame in tqdm(
            video.frames(),
            total=total,
            unit="frame",
            desc=path.name,
            leave=False,
            disable=not progress,
        ):
            result = pipeline.process(frame)
            names = pipeline.pipeline.classifier(result.model).meta.class_names
            frames += 1
            tracks = {track.id: track for track in pipeline.tracks}
            for face in result.faces:
                raw = names[int(tracks[face.track_id].probs[-1].argmax())]
                faces += 1
                hits += face.label == expected
                raw_hits += raw == expected
                flicker.add(face.track_id, face.label, raw)
            if max_frames and frames >= max_frames:
                break
        else:  # read to its end: say if that came early
            if note := video.cut_off_note():
                log.warning("%s; its figures cover the frames that were read", note)
    return {
        "clip": path.name,
        "expected": expected,
        "frames": frames,
        "faces": faces,
        "share": hits / faces if faces else None,
        "raw_share": raw_hits / faces if faces else None,
        "flicker": flicker.per_face_second(fps),
        "fps": frames / (time.perf_counter() - start),
    }


def measure(args: argparse.Namespace) -> tuple[list[dict], list[dict], DetectorConfig]:
    """Check the arguments, then measure every expected clip found in --videos; returns the
    rows, the clips skipped and the detector settings the flags gave."""
    if args.json:
        refuse_inputs(
            args.json,
            "--json",
            {
                "--weights": args.weights or default_weights(args.model),
                "--detector-weights": detector_file(args),
                "clip": [args.videos / name for name in EXPECTED],
            },
        )
        check_writable(args.json, args.overwrite)
    if not args.videos.is_dir():
        raise FileNotFoundError(
            f"--videos {args.videos} is not a folder of clips (it takes the folder of the "
            "shared clips, ../shared/data/videos when left out)"
        )
    if not any((args.videos / name).exists() for name in EXPECTED):
        raise FileNotFoundError(
            f"--videos {args.videos} holds none of the expected clips (the shared set's "
            f"{len(EXPECTED)}, such as {sorted(EXPECTED)[0]})"
        )
    require_counts(("--detect-every", args.detect_every), ("--smooth", args.smooth))
    require_detect_scale(args.detect_scale)
    if args.max_frames is not None and args.max_frames < 1:
        raise FlagValueError("--max-frames must be at least 1")
    config = PipelineConfig(
        detector=detector_of(args, scale=args.detect_scale),
        tracking=TrackingConfig(
            detect_every=args.detect_every,
            smooth_window=args.smooth,
            # the naive path: every frame on its own, nothing carried
            max_misses=0 if args.detect_every == args.smooth == 1 else TrackingConfig().max_misses,
        ),
        model=args.model,
        device=args.device,
    )
    weights = {args.model: args.weights} if args.weights else {}
    pipeline = TrackingPipeline(Pipeline(config, weights))
    rows, skipped = [], []
    for name, expected in EXPECTED.items():
        path = args.videos / name
        reason = None
        if not path.exists():
            reason = f"not in {args.videos}"
        else:
            try:
                rows.append(clip_shares(pipeline, path, expected, not args.quiet, args.max_frames))
            except SourceError as exc:  # one unreadable clip does not cost the others
                reason = str(exc)
        if reason is not None:
            tell(PROG, f"skipping {name}: {reason}")
            skipped.append({"clip": name, "reason": reason})
    if not rows:
        raise FileNotFoundError(f"no clip in {args.videos} could be read")
    return rows, skipped, config.detector


def settings_of(args: argparse.Namespace, detector: DetectorConfig) -> dict:
    """What the figures depend on, for the --json record."""
    return {
        "videos": str(args.videos),
        "weights": str(args.weights) if args.weights else "default",
        "device": args.device,
        "detector": asdict(detector),
        "detect_every": args.detect_every,
        "smooth": args.smooth,
        "max_frames": args.max_frames,
    }


def write_json(
    args: argparse.Namespace,
    detector: DetectorConfig,
    rows: list[dict],
    skipped: list[dict],
    unscored: list[str],
) -> int:
    """Write the table and its settings after the work; a failure now is not a user error
    (status 1)."""
    record = {"model": args.model, "clips": rows}
    record.update(settings=settings_of(args, detector), skipped=skipped, unscored=unscored)
    lost = "the table was not saved"
    return save_after_work(PROG, args.json, strict_json(record), args.overwrite, lost)


def detector_text(detector: DetectorConfig) -> str:
    """The detector settings a clip table was taken with, for its first line."""
    weights = {"default": "tuned"}.get(detector.weights, detector.weights)
    thresholds = "/".join(f"{t:g}" for t in detector.thresholds)
    near = detector.near_face if detector.weights != "stock" else 0  # a pass of tuned weights
    return (
        f"{weights} {thresholds} score {detector.min_score:g}, min face {detector.min_face_size}, "
        f"near face {near or 'off'}, scale {detector.scale:g}"
    )


def print_rows(args: argparse.Namespace, detector: DetectorConfig, rows: list[dict]) -> None:
    say(
        f"model {args.model}, detector {detector_text(detector)}, "
        f"detect every {args.detect_every}, smooth {args.smooth}"
    )
    say(
        "share: detections with the expected label (shown = smoothed, raw = per frame); "
        "flicker: label changes per face per second"
    )
    say(
        f"{'clip':36} {'expected':9} {'frames':>6} {'faces':>6} {'shown':>7} {'raw':>7} "
        f"{'flicker shown':>13} {'flicker raw':>11} {'FPS':>6}"
    )

    def pct(value):
        return f"{value:.1%}" if value is not None else "-"

    def rate(value):
        return f"{value:.3f}" if value is not None else "-"

    for r in rows:
        say(
            f"{r['clip']:36} {r['expected']:9} {r['frames']:6d} {r['faces']:6d} "
            f"{pct(r['share']):>7} {pct(r['raw_share']):>7} {rate(r['flicker']['shown']):>13} "
            f"{rate(r['flicker']['raw']):>11} {r['fps']:6.1f}"
        )


@stoppable  # SIGTERM and SIGHUP stop it as Ctrl-C does
def main(argv: list[str] | None = None) -> int:
    guard_streams()
    p = OneLineParser(prog=f"python -m {PROG}", description=__doc__)
    p.add_argument(
        "--videos",
        type=input_path,
        default=Path("../shared/data/videos"),
        help="folder holding the shared clips (default ../shared/data/videos)",
    )
    p.add_argument(
        "--model", choices=["student", "teacher"], default="student", help="default student"
    )
    p.add_argument(
        "--weights", type=input_path, help="classifier weights (default: the shipped ones)"
    )
    p.add_argument(
        "--device", default="auto", type=device, help="auto, cpu, cuda or cuda:N (default auto)"
    )
    p.add_argument(
        "--detect-scale",
        type=float,
        default=DetectorConfig().scale,
        help="detect on frames resized by this factor (default %(default)s)",
    )
    add_detector_flags(p)
    p.add_argument(
        "--detect-every",
        type=int,
        default=TrackingConfig().detect_every,
        help="run the detector on every N-th frame, track in between (default %(default)s)",
    )
    p.add_argument(
        "--smooth",
        type=int,
        default=TrackingConfig().smooth_window,
        help="decide a face's label over N frames (default %(default)s)",
    )
    p.add_argument(
        "--max-frames",
        type=int,
        metavar="N",
        help="stop each clip after N frames, for a quick look (default: whole clips)",
    )
    p.add_argument("--json", type=output_file, help="also write the table as JSON to this file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    log_to_stderr(logging.WARNING)
    try:
        rows, skipped, detector = measure(args)
        unscored = unscored_clips(args.videos)
        written = 0
        if args.json:  # before the table, so that a reader leaving early (| head) costs nothing
            written = write_json(args, detector, rows, skipped, unscored)
        print_rows(args, detector, rows)
        if unscored:
            say(
                "not scored (only the shared clips whose faces keep one known label are): "
                + ", ".join(unscored)
            )
        return written
    except (SourceError, CheckpointError, OSError, ValueError) as exc:
        error(PROG, describe_error(exc))
        return 2
    except KeyboardInterrupt as exc:
        said, status = stop_message(exc)
        tell(PROG, f"{said}; nothing was written")
        return status


if __name__ == "__main__":
    sys.exit(exit_status(main(), PROG))
