"""Command line of ``python -m app``: the window by default, ``--headless`` for files.

User mistakes (missing files, bad weights, no camera) end in one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import socket
import sys
from pathlib import Path

from app.alerts import DEFAULT_DELAY_S
from app.atomic import STDOUT, OutputExistsError, describe_error
from app.config import (
    MIN_MAX_SIDE,
    SENSITIVITY,
    DetectorConfig,
    PipelineConfig,
    TrackingConfig,
    sensitivity_of,
    with_overrides,
)
from app.console import counted, error, guard_streams, log_to_stderr, note, say, tell
from app.device import DeviceError
from app.flags import (
    MAX_FACE_SIDE,
    FlagValueError,
    OneLineParser,
    detector_weights,
    device,
    folder_ending,
    near_face,
    require_counts,
    require_detect_scale,
)
from app.source import SourceError
from app.stop_signals import stop_message, stop_signals_raise
from models import detector_checkpoint
from models.checkpoint import CheckpointError, default_weights

PROG = "maskwatch"  # how the command's one-line complaints begin
log = logging.getLogger(PROG)

# OSError covers a path that is a file where a folder is needed and the like.
USER_ERRORS = (SourceError, CheckpointError, DeviceError, OutputExistsError, ValueError, OSError)

# Below this P-Net passes nearly every window of the image pyramid on to R-Net: measured on a
# 640x480 frame on 2 cores, 0.01 takes about 0.6 s a frame, and with R and O at 0 too, 0 takes
# over 20 s and boxes a thousand things.
SLOW_P_THRESHOLD = 0.05


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m app",
        error_name=PROG,
        description=("MaskWatch: mark every face in a video as masked or unmasked."),
    )
    parser.add_argument("--source", help="camera index, video file or stream URL (default 0)")
    parser.add_argument(
        "--model",
        choices=["student", "teacher"],
        help="classifier (default student; the window reuses its last choice)",
    )
    parser.add_argument(
        "--device",
        type=device,
        help="auto, cpu, cuda or cuda:N (default auto; the window reuses the last one given)",
    )
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="also classify each face's mirror image and average the two (twice the classify work)",
    )
    parser.add_argument("--student-weights", help="student checkpoint to load")
    parser.add_argument("--teacher-weights", help="teacher checkpoint to load")
    parser.add_argument("--headless", action="store_true", help="no window: process and exit")
    parser.add_argument(
        "--output", help="headless: annotated video to write (.mp4, .avi, .mov or .mkv)"
    )
    parser.add_argument(
        "--events", help="headless: per-frame JSON Lines to write (-: standard output, live)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--max-frames", type=int, help="headless: stop after this many frames")
    feats = parser.add_argument_group("alerts, statistics and snapshots")
    feats.add_argument(
        "--alerts",
        metavar="DIR",
        help="headless: write alerts.jsonl and a JPEG per alert into DIR",
    )
    feats.add_argument(
        "--alert-delay",
        type=float,
        metavar="S",
        help="alert when a face stays unmasked this many seconds "
        f"(default {DEFAULT_DELAY_S:g}, or in the window the last one set)",
    )
    feats.add_argument(
        "--stats",
        metavar="FILE",
        help="headless: write per-second mask statistics as CSV",
    )
    feats.add_argument(
        "--snapshot-every",
        type=int,
        metavar="N",
        help="headless: save every N-th annotated frame as PNG (needs --snapshots)",
    )
    feats.add_argument("--snapshots", metavar="DIR", help="headless: folder for --snapshot-every")
    det = parser.add_argument_group("detector")
    defaults = DetectorConfig()
    det.add_argument(
        "--sensitivity",
        choices=list(SENSITIVITY),
        help="detector preset for the thresholds and --min-score: high finds more "
        "masked and small faces but may box things that are not faces "
        "(default standard; the window reuses its last choice)",
    )
    det.add_argument(
        "--min-face",
        type=int,
        help=f"smallest face in pixels (default {defaults.min_face_size}; the "
        "window reuses the last one set)",
    )
    det.add_argument(
        "--near-face",
        type=near_face,
        metavar="PX",
        help="with tuned detector weights, also look for faces of PX pixels and up with "
        "MTCNN's stock weights, which find some large, near faces the tuned ones miss "
        f"(default {defaults.near_face}; 0: off, which saves a quarter to a third of the "
        "detector's time; the window reuses its last choice)",
    )
    det.add_argument(
        "--detect-scale",
        type=float,
        default=defaults.scale,
        help=f"resize frames by this before detection (default {defaults.scale})",
    )
    det.add_argument(
        "--thresholds",
        type=float,
        nargs=3,
        metavar=("P", "R", "O"),
        help="MTCNN stage thresholds (default: those of --sensitivity)",
    )
    det.add_argument(
        "--min-score",
        type=float,
        help=f"drop detections below this confidence (default {defaults.min_score}, "
        "or that of --sensitivity)",
    )
    det.add_argument(
        "--max-side",
        type=int,
        default=defaults.max_side,
        help="shrink larger frames to this longer side before detection "
        f"(0: never; default {defaults.max_side})",
    )
    det.add_argument(
        "--detector-weights",
        type=detector_weights,
        default=defaults.weights,
        metavar="FILE|stock",
        help="MTCNN weights: a file from training.tune_detector, or stock for "
        "facenet-pytorch's own (default: models/detector.pt, tuned on masked faces)",
    )
    track = parser.add_argument_group("tracking")
    tracking = TrackingConfig()
    track.add_argument(
        "--detect-every",
        type=int,
        default=tracking.detect_every,
        help="run the detector on every n-th frame and track faces in between "
        f"(1: every frame; default {tracking.detect_every})",
    )
    track.add_argument(
        "--smooth",
        type=int,
        default=tracking.smooth_window,
        help="decide each face's label over this many frames "
        f"(1: no smoothing; default {tracking.smooth_window})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


FILE_FLAGS = ("--output", "--events", "--stats")  # a file each, never a folder
FOLDER_FLAGS = ("--alerts", "--snapshots")
PATH_FLAGS = (
    "--student-weights",
    "--teacher-weights",
    "--output",
    "--events",
    "--alerts",
    "--stats",
    "--snapshots",
)


def to_paths(args: argparse.Namespace) -> None:
    """Turn the path flags into Paths; an empty one is refused (Path("") is the current
    folder, which would then be read or replaced under a name the user never gave), as is
    an empty --source, which names no camera, file or URL."""
    if args.source is not None and not args.source.strip():
        raise FlagValueError("--source is empty; name a camera index, a video file or a URL")
    for flag in PATH_FLAGS:
        name = flag[2:].replace("-", "_")
        value = getattr(args, name)
        if value is None:
            continue
        if not value.strip():
            what = "a folder" if flag in FOLDER_FLAGS else "a file"
            raise FlagValueError(f"{flag} is empty; name {what}")
        if flag in FILE_FLAGS and (ending := folder_ending(value)):
            raise FlagValueError(
                f"{flag} {value} ends in '{ending}', as a folder does; name a file"
            )
        path = Path(value)
        if value == STDOUT:
            path = STDOUT  # as given: --events streams there, the other flags refuse it
        elif str(path) == STDOUT:  # "./-" names a file called "-"
            path = path.absolute()
        setattr(args, name, path)


def detector_config(args: argparse.Namespace) -> DetectorConfig:
    """The detector flags on top of the --sensitivity preset; explicit flags win over it."""
    detector = DetectorConfig(
        scale=args.detect_scale,
        max_side=args.max_side,
        weights=args.detector_weights,
        near_face=DetectorConfig.near_face if args.near_face is None else args.near_face,
    )
    detector = with_overrides(detector, args.sensitivity, args.thresholds, args.min_score)
    if args.min_face is not None:
        detector.min_face_size = args.min_face
    return detector


def window_sensitivity(args: argparse.Namespace, detector: DetectorConfig) -> str | None:
    """The preset the window should start with: None for its saved one, and also for
    --thresholds / --min-score that match no preset (the window then keeps them as given)."""
    if args.thresholds is None and args.min_score is None:
        return args.sensitivity
    return sensitivity_of(detector)


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    require_counts(("--detect-every", args.detect_every), ("--smooth", args.smooth))
    if args.max_frames is not None and args.max_frames < 1:
        raise FlagValueError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.max_side != 0 and not args.max_side >= MIN_MAX_SIDE:
        raise FlagValueError(
            f"--max-side must be 0 (never shrink) or at least {MIN_MAX_SIDE} pixels, "
            f"got {args.max_side}"
        )
    require_detect_scale(args.detect_scale)
    if args.min_face is not None and not 1 <= args.min_face <= MAX_FACE_SIDE:
        raise FlagValueError(
            f"--min-face must be between 1 and {MAX_FACE_SIDE} pixels, got {args.min_face}"
        )
    for value in list(args.thresholds or []) + ([args.min_score] if args.min_score else []):
        if not 0.0 <= value <= 1.0:  # also refuses nan
            raise FlagValueError(f"--thresholds and --min-score must lie in [0, 1], got {value}")
    if args.thresholds is not None and args.thresholds[0] < SLOW_P_THRESHOLD:
        log.warning(
            "--thresholds P %g lets almost every window through P-Net: detection may take "
            "seconds per frame, tens with low R and O thresholds too",
            args.thresholds[0],
        )
    if args.detector_weights not in ("default", "stock"):
        detector_checkpoint.read(Path(args.detector_weights))  # a bad file fails here, in one line
    detector = detector_config(args)
    # Detecting every frame without smoothing is the naive path: each frame stands alone,
    # so a face the detector loses is not carried over either.
    naive = args.detect_every == 1 and args.smooth == 1
    tracking = TrackingConfig(
        detect_every=args.detect_every,
        smooth_window=args.smooth,
        max_misses=0 if naive else TrackingConfig().max_misses,
    )
    return PipelineConfig(
        detector=detector,
        tracking=tracking,
        model=args.model or "student",
        device=args.device or "auto",
        mirror=args.mirror,
    )


def alert_delay(args: argparse.Namespace) -> float | None:
    delay = args.alert_delay
    if delay is not None and not (math.isfinite(delay) and delay >= 0):
        raise FlagValueError(f"--alert-delay must be a number of seconds, 0 or more, got {delay:g}")
    return args.alert_delay


def weights(args: argparse.Namespace) -> dict[str, Path]:
    given = {"student": args.student_weights, "teacher": args.teacher_weights}
    return {name: path for name, path in given.items() if path is not None}


def read_files(args: argparse.Namespace) -> dict[str, Path]:
    """The weights files a headless run reads, and the shipped ones, which no output of a
    run may replace (what they are -> path)."""
    reads = {
        f"the shipped {name} weights": default_weights(name) for name in ("student", "teacher")
    }
    reads["the shipped detector weights"] = detector_checkpoint.DEFAULT_DETECTOR
    for name, path in weights(args).items():
        reads[f"the --{name}-weights file"] = path
    if args.detector_weights not in (None, "default", "stock"):
        reads["the --detector-weights file"] = Path(args.detector_weights)
    return reads


def run_headless_cli(args: argparse.Namespace) -> int:
    from app.headless import Extras, check_outputs, events_to_stdout, run_headless
    from app.pipeline import Pipeline
    from app.tracking import TrackingPipeline

    if args.source is None:
        raise FlagValueError("--headless needs --source")
    if args.snapshots is not None and args.snapshot_every is None:
        raise FlagValueError("--snapshots DIR needs --snapshot-every N, how often to save a frame")
    delay = alert_delay(args)
    extras = Extras(
        args.alerts,
        DEFAULT_DELAY_S if delay is None else delay,
        args.stats,
        args.snapshots,
        args.snapshot_every or 0,
    )
    # Before any model loads; no output may replace a weights file.
    check_outputs(
        args.source, args.output, args.events, extras, args.overwrite, reads=read_files(args)
    )
    active = args.model or "student"
    for name, path in weights(args).items():
        if name != active:  # never loaded, so a broken file there would pass unremarked
            log.warning(
                "--%s-weights %s is not used: a headless run classifies with --model %s only",
                name,
                path,
                active,
            )
    pipeline = TrackingPipeline(Pipeline(pipeline_config(args), weights(args)))
    summary = run_headless(
        pipeline,
        args.source,
        args.output,
        args.events,
        args.overwrite,
        args.max_frames,
        progress=not args.quiet,
        extras=extras,
    )
    report = note if events_to_stdout(args.events) else say  # stdout carries the events
    report(summary.text())
    if args.alerts is not None and "alerts" not in summary.failed:
        report(f"{counted(summary.alerts, 'alert')} written to {args.alerts}")
    if args.snapshots is not None and "snapshots" not in summary.failed:
        report(f"{counted(summary.snapshots, 'snapshot')} written to {args.snapshots}")
    for output, reason in summary.failed.items():
        tell(PROG, f"{output} not written: {reason}")
    return 1 if summary.failed else 0


def missing_display() -> str | None:
    """Why no window can open here, or None. Qt itself would abort the process with a core
    dump. Only what can be told for sure is said: a local X display or Wayland socket that
    nothing answers on; a remote DISPLAY or a chosen QT_QPA_PLATFORM is left to Qt."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland:
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        if _answers(wayland if os.path.isabs(wayland) else os.path.join(runtime, wayland)):
            return None
    display = os.environ.get("DISPLAY")
    if display:
        local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
        if not local:
            return None
        socket_path = f"/tmp/.X11-unix/X{local.group(1)}"
        if _answers(socket_path) or _answers("\0" + socket_path):  # file or abstract socket
            return None
        return f"no X server answers on DISPLAY={display}"
    if wayland:
        return f"no Wayland server answers on WAYLAND_DISPLAY={wayland}"
    return "DISPLAY is not set"


def _answers(address: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


def run_window_cli(args: argparse.Namespace) -> int:
    if reason := missing_display():
        raise ValueError(
            f"no display to open the window on ({reason}); run it in a desktop session, "
            "or use --headless with --output/--events"
        )
    from app.window import run_window
    from app.window_flags import WindowFlags

    config = pipeline_config(args)
    given = WindowFlags(
        model=args.model,
        device=args.device,
        alert_delay_s=alert_delay(args),
        sensitivity=window_sensitivity(args, config.detector),
        min_face=args.min_face,
        near_face=args.near_face,
    )
    return run_window(config, weights(args), args.source, given)


HEADLESS_ONLY = (
    "--output",
    "--events",
    "--max-frames",
    "--alerts",
    "--stats",
    "--snapshot-every",
    "--snapshots",
)


def main(argv: list[str] | None = None) -> int:
    closed = guard_streams()
    args = build_parser().parse_args(argv)
    log_to_stderr(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        if args.events == STDOUT and "stdout" in closed:
            raise FlagValueError(
                "--events -: standard output is closed, so the events would go nowhere; name a file"
            )
        to_paths(args)
        if args.headless:
            with stop_signals_raise():
                return run_headless_cli(args)
        ignored = [
            flag for flag in HEADLESS_ONLY if getattr(args, flag[2:].replace("-", "_")) is not None
        ]
        if ignored:
            verb = "works" if len(ignored) == 1 else "work"
            raise ValueError(f"{', '.join(ignored)} {verb} only with --headless")
        return run_window_cli(args)
    except USER_ERRORS as exc:
        error(PROG, describe_error(exc))
        return 2
    except KeyboardInterrupt as exc:
        said, status = stop_message(exc)
        kept = "no partial output was kept"
        if getattr(args, "events", None) == STDOUT:  # those lines are with their reader
            kept = "no partial file was kept; the events already sent stand"
        tell(PROG, f"{said}; {kept}")
        return status
