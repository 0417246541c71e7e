"""Settings of the detection pipeline, in one place, with the defaults the app ships."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# Below a tenth a 640 px frame is 64 px wide: too small for any face worth boxing.
MIN_SCALE, MAX_SCALE = 0.1, 4.0
MIN_MAX_SIDE = 64  # a frame shrunk below this holds no face MTCNN can find
MTCNN_MIN_SIDE = 12  # P-Net's window: images smaller than this cannot hold a face


@dataclass
class DetectorConfig:
    """MTCNN settings the user may change.

    Attributes:
        min_face_size: smallest face, in pixels of the original frame, that is searched for.
        thresholds: MTCNN's three stage thresholds (P-, R- and O-net).
        factor: scale step of the image pyramid.
        scale: the frame is resized by this factor before detection (boxes are mapped back).
        max_side: frames whose longer side exceeds this are shrunk to it before detection
            (0: never); bounds the detector's cost on HD sources.
        min_score: detections below this final confidence are dropped.
        weights: MTCNN's weights: "default" (the tuned ``models/detector.pt`` when present,
            else stock), "stock" (as shipped in facenet-pytorch) or a weights file.
        near_face: with tuned weights, faces of at least this many pixels are also looked
            for with MTCNN's stock weights (0: never); each is kept where no tuned box covers
            it, and replaces tuned boxes that are only parts of it. The tuned nets learnt on
            small street faces and pass over some large, near ones (a face close to a
            webcam), or box only an eye of them.
    """

    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.5, 0.4, 0.8)
    factor: float = 0.709
    scale: float = 1.0
    max_side: int = 640
    min_score: float = 0.9
    weights: str = "default"
    near_face: int = 100


# Detector sensitivity presets: MTCNN stage thresholds and the final score cut, chosen on
# the scenes train split for the tuned detector (models/detector.pt). "high" finds more
# masked and small faces at the price of more false boxes, which a classifier with a
# not_face class then drops. Stock MTCNN's own defaults are 0.6 / 0.7 / 0.7.
SENSITIVITY = {
    "standard": {"thresholds": (0.5, 0.4, 0.8), "min_score": 0.9},
    "high": {"thresholds": (0.4, 0.2, 0.5), "min_score": 0.5},
}


def with_sensitivity(config: DetectorConfig, name: str) -> DetectorConfig:
    """A copy of ``config`` with the thresholds and score cut of preset ``name``."""
    if name not in SENSITIVITY:
        raise ValueError(f"unknown sensitivity {name!r}; choose {' or '.join(SENSITIVITY)}")
    preset = SENSITIVITY[name]
    return replace(config, thresholds=preset["thresholds"], min_score=preset["min_score"])


def with_overrides(
    config: DetectorConfig,
    sensitivity: str | None = None,
    thresholds: tuple[float, float, float] | None = None,
    min_score: float | None = None,
) -> DetectorConfig:
    """``config`` under preset ``sensitivity``, then explicit thresholds and score cut on top:
    what a command line's detector flags mean."""
    if sensitivity is not None:
        config = with_sensitivity(config, sensitivity)
    if thresholds is not None:
        config = replace(config, thresholds=tuple(thresholds))
    if min_score is not None:
        config = replace(config, min_score=min_score)
    return config


def sensitivity_of(config: DetectorConfig) -> str | None:
    """The preset ``config`` matches, or None for hand-set thresholds."""
    for name, preset in SENSITIVITY.items():
        same = tuple(config.thresholds) == preset["thresholds"]
        if same and config.min_score == preset["min_score"]:
            return name
    return None


@dataclass
class CropConfig:
    """How a detected box becomes a classifier crop: widened by ``margin`` and made square."""

    margin: float = 0.15
    square: bool = True


@dataclass
class TrackingConfig:
    """Between detections, faces are carried along by optical flow and re-classified.

    Attributes:
        detect_every: run the detector on every n-th frame (1: every frame, no tracking).
        iou_match: a detection continues a track when their boxes overlap this much.
        max_misses: detector rounds a track survives unmatched (MTCNN misses masked faces).
        smooth_window: a face's label is decided over this many recent classifications.
    """

    detect_every: int = 3
    iou_match: float = 0.3
    max_misses: int = 1
    smooth_window: int = 5


@dataclass
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    model: str = "student"
    device: str = "auto"
    mirror: bool = False  # average each crop's answer with its mirror image's
