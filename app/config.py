"""Settings of the detection pipeline, in one place, with the defaults the app ships."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """

    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    scale: float = 1.0
    max_side: int = 640
    min_score: float = 0.9


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
