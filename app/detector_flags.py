"""The detector flags of the measuring commands (``training.evaluate``,
``training.evaluate_clips``), so that a figure taken with one setting can be taken again
with another. The app's own command line declares its set in ``app.cli``: there the
minimum face and the close-up size fall back on the window's saved settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.config import SENSITIVITY, DetectorConfig, with_overrides
from app.flags import FlagValueError, detector_weights, near_face
from models.detector_checkpoint import DEFAULT_DETECTOR


def add_detector_flags(parser: argparse.ArgumentParser) -> None:
    """Declare --min-face, --near-face, --thresholds, --min-score, --sensitivity and
    --detector-weights with the app's defaults."""
    det = DetectorConfig()
    parser.add_argument(
        "--min-face",
        type=int,
        default=det.min_face_size,
        help=f"detector's smallest face in pixels (default {det.min_face_size})",
    )
    parser.add_argument(
        "--near-face",
        type=near_face,
        default=det.near_face,
        metavar="PX",
        help="also look for faces of PX pixels and up with MTCNN's stock weights, as the "
        f"app does (default {det.near_face}; 0: off)",
    )
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs=3,
        metavar=("P", "R", "O"),
        help=f"MTCNN stage thresholds (default {' '.join(map(str, det.thresholds))})",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        help=f"drop detections below this confidence (default {det.min_score})",
    )
    parser.add_argument(
        "--sensitivity",
        choices=list(SENSITIVITY),
        help="detector preset for --thresholds and --min-score (explicit flags win)",
    )
    parser.add_argument(
        "--detector-weights",
        type=detector_weights,
        default=det.weights,
        metavar="FILE|stock",
        help="MTCNN weights (default: models/detector.pt when present; stock: facenet-pytorch's)",
    )


def detector_of(args: argparse.Namespace, scale: float = 1.0) -> DetectorConfig:
    """The detector the flags describe: the --sensitivity preset, explicit flags on top.

    Raises:
        FlagValueError: for a minimum face under 1 pixel, or thresholds or a score cut
            outside [0, 1].
    """
    if args.min_face < 1:
        raise FlagValueError(f"--min-face must be at least 1, got {args.min_face}")
    if args.thresholds is not None and not all(0 <= t <= 1 for t in args.thresholds):
        raise FlagValueError(f"--thresholds must lie in [0, 1], got {args.thresholds}")
    if args.min_score is not None and not 0 <= args.min_score <= 1:
        raise FlagValueError(f"--min-score must lie in [0, 1], got {args.min_score}")
    detector = DetectorConfig(
        min_face_size=args.min_face,
        weights=args.detector_weights,
        near_face=args.near_face,
        scale=scale,
    )
    return with_overrides(detector, args.sensitivity, args.thresholds, args.min_score)


def detector_file(args: argparse.Namespace) -> Path | None:
    """The weights file --detector-weights reads (None for stock), for the outputs that may
    not write over it."""
    return {"default": DEFAULT_DETECTOR, "stock": None}.get(
        args.detector_weights, Path(args.detector_weights)
    )
