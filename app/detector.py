"""Face detection with facenet-pytorch's MTCNN, boxes returned in original frame pixels.

Only MTCNN's ``detect()`` is used: the app crops and classifies faces itself. By default its
nets carry the weights tuned on masked faces by ``training.tune_detector``
(``models/detector.pt``); the stock weights inside facenet-pytorch are the fallback. Beside
tuned weights, a second MTCNN with the stock weights looks for large faces only
(``near_face``): tuned on small street faces, the nets pass over some faces that fill a
webcam frame, or box only an eye of them. Nothing is downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

from app.config import MAX_SCALE, MIN_MAX_SIDE, MIN_SCALE, MTCNN_MIN_SIDE, DetectorConfig
from models import detector_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]
    score: float


class FaceDetector:
    """Finds faces in RGB frames; settings can be changed between frames."""

    def __init__(self, config: DetectorConfig | None = None, device: torch.device | None = None):
        self.device = device or torch.device("cpu")
        self.config = config or DetectorConfig()
        self._mtcnn = MTCNN(keep_all=True, device=self.device, post_process=False)
        self.record: dict = {}  # what tuned weights record of their making (none for stock)
        self.weights = self._load_weights(self.config.weights)
        self._mtcnn.to(self.device).eval()
        self._stock: MTCNN | None = None  # the stock nets for near faces, built when needed
        self._warned_too_small: set[tuple[int, int, int]] = set()
        self.configure(self.config)

    def _load_weights(self, weights: str) -> str:
        """Load tuned weights into the nets; returns what is in use ("stock" or a file).

        Raises:
            DetectorWeightsError: for a named file that is missing or not detector weights.
        """
        if weights == "stock":
            return "stock"
        path = detector_checkpoint.DEFAULT_DETECTOR if weights == "default" else Path(weights)
        if weights == "default" and not path.exists():
            log.warning("no tuned detector at %s; using MTCNN's stock weights", path)
            return "stock"
        self.record = detector_checkpoint.load_into(path, self._mtcnn)
        return str(path)

    def configure(self, config: DetectorConfig) -> None:
        """Apply new settings; takes effect on the next frame (weights are fixed at start)."""
        if not MIN_SCALE <= config.scale <= MAX_SCALE:  # also refuses nan
            raise ValueError(
                f"detector scale must be between {MIN_SCALE:g} and {MAX_SCALE:g}, "
                f"got {config.scale:g}"
            )
        if config.max_side and config.max_side < MIN_MAX_SIDE:
            raise ValueError(
                f"max side must be 0 (never shrink) or at least {MIN_MAX_SIDE} pixels, "
                f"got {config.max_side}"
            )
        self.config = replace(config)
        self._mtcnn.thresholds = list(config.thresholds)
        self._mtcnn.factor = config.factor

    def effective_scale(self, width: int, height: int) -> float:
        """The resize factor for a frame: ``scale``, lowered further to respect ``max_side``."""
        scale = self.config.scale
        longest = max(width, height) * scale
        if self.config.max_side and longest > self.config.max_side:
            scale *= self.config.max_side / longest
        return scale

    @torch.inference_mode()
    def detect(self, frame_rgb: np.ndarray) -> list[Detection]:
        """Detect faces in an H x W x 3 uint8 RGB frame."""
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 RGB frame, got shape {frame_rgb.shape}")
        scale = self.effective_scale(frame_rgb.shape[1], frame_rgb.shape[0])
        self._mtcnn.min_face_size = max(MTCNN_MIN_SIDE, round(self.config.min_face_size * scale))
        image = frame_rgb
        if scale != 1.0:
            size = (
                max(1, round(frame_rgb.shape[1] * scale)),
                max(1, round(frame_rgb.shape[0] * scale)),
            )
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = cv2.resize(frame_rgb, size, interpolation=interp)
        if min(image.shape[:2]) < max(MTCNN_MIN_SIDE, self._mtcnn.min_face_size):
            self._warn_too_small(frame_rgb.shape[1], frame_rgb.shape[0])
            return []
        image = np.ascontiguousarray(image)
        found = _detections(self._mtcnn, image, scale, self.config.min_score)
        if self.weights != "stock" and self.config.near_face:
            found = self._with_near_faces(image, scale, found)
        return drop_nested(found)

    def _with_near_faces(self, image: np.ndarray, scale: float, found: list[Detection]):
        """``found`` with the faces of ``near_face`` pixels and up that the stock nets find:
        each is added where no tuned box covers it, and replaces tuned boxes that are only
        parts of it (an eye or a spectacle lens boxed on a face that fills the frame)."""
        near = max(self.config.near_face, self.config.min_face_size) * scale
        short = min(image.shape[:2])
        if short < near:
            return found
        if self._stock is None:  # not before: a detector run with the pass off never needs it
            self._stock = MTCNN(keep_all=True, device=self.device, post_process=False).eval()
            self._stock.thresholds = list(STOCK_NEAR_THRESHOLDS)
        self._stock.min_face_size = max(MTCNN_MIN_SIDE, round(near))
        faces = _detections(self._stock, image, scale, STOCK_NEAR_MIN_SCORE)
        last = smallest_level(short, self._stock.min_face_size, self._stock.factor)
        if last > FILL_LEVEL_PX and near <= FILL_NEAR_SHARE * short:
            # The pyramid stopped short of the level where the frame's short side is P-Net's
            # window, the one level that sees whole a face as tall as the frame (a person
            # leaning into a webcam); that level is searched on its own.
            self._stock.min_face_size = short * FILL_MIN_FACE
            faces += _detections(self._stock, image, scale, STOCK_NEAR_MIN_SCORE)
        for face in drop_nested(faces):
            covering = [f for f in found if _shared(face.box, f.box) > NEW_FACE_SHARE]
            if all(part_of(f.box, face.box) for f in covering):
                found = [f for f in found if f not in covering] + [face]
        return found

    def _warn_too_small(self, width: int, height: int) -> None:
        """Say once per frame size and setting why no face can be found in such frames."""
        key = (width, height, self.config.min_face_size)
        if key in self._warned_too_small:
            return
        self._warned_too_small.add(key)
        if self.config.min_face_size > min(width, height):
            log.warning(
                "the minimum face size (%d px) is larger than the %dx%d frame: no face can be "
                "found; lower --min-face (Minimum face in the window)",
                self.config.min_face_size,
                width,
                height,
            )
        else:
            log.warning(
                "a %dx%d frame is too small to hold a face the detector can find", width, height
            )


# Stock MTCNN's own stage thresholds, and a score cut that keeps its near-face boxes to
# faces: on the scenes train split's large faces it is rarely wrong above it.
STOCK_NEAR_THRESHOLDS = (0.6, 0.7, 0.7)
STOCK_NEAR_MIN_SCORE = 0.9
# The stock pass adds a level whose short side is P-Net's 12 px window when its pyramid's
# smallest level is larger than this (MTCNN stops above 12 px, up to 17 px: a face filling the
# frame's height is then wider than the window at every level). FILL_MIN_FACE, just under 1,
# makes that level's side a hair over 12 px, so float rounding cannot leave it out.
FILL_LEVEL_PX = 13.0
FILL_MIN_FACE = 0.999
# ...and only when --near-face is at most this share of the short side, so that the faces that
# level finds (about 0.7 of the side and up) are all faces the setting asks for.
FILL_NEAR_SHARE = 0.5


def smallest_level(short: int, min_face: float, factor: float) -> float:
    """The short side, in pixels, of the smallest level of MTCNN's pyramid for an image of
    short side ``short`` searched from ``min_face`` with step ``factor`` (as facenet-pytorch
    builds it: levels from 12 / min_face down, while the side stays at least 12)."""
    side = short * 12.0 / min_face
    while side * factor >= 12:
        side *= factor
    return side


# A stock box sharing more than this share of its (or a tuned box's) area with a tuned box
# is a face the tuned nets found already: their box is kept, as the classifier learnt on it.
NEW_FACE_SHARE = 0.3


def _detections(mtcnn: MTCNN, image: np.ndarray, scale: float, min_score: float):
    """``mtcnn``'s boxes in ``image`` (a frame resized by ``scale``) scoring at least
    ``min_score``, mapped back to the frame's pixels."""
    boxes, scores = mtcnn.detect(image)
    if boxes is None:
        return []
    found = []
    for box, score in zip(boxes, scores):
        if score is None or score < min_score:
            continue
        x1, y1, x2, y2 = (float(v) / scale for v in box)
        if x2 <= x1 or y2 <= y1:
            continue
        found.append(Detection((x1, y1, x2, y2), float(score)))
    return found


# A box sharing more than this share of the smaller box's area with a better-scored box is
# the same face seen twice (the tuned nets put a second, lower box on a large face, which
# MTCNN's own suppression at 0.7 keeps). Two real faces rarely hide half of one another.
NESTED_SHARE = 0.5


def drop_nested(detections: list[Detection]) -> list[Detection]:
    """Keep, best score first, each box that does not mostly overlap a box already kept."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: d.score, reverse=True):
        if not any(_shared(det.box, k.box) > NESTED_SHARE for k in kept):
            kept.append(det)
    return kept


# A box is a part of a face box that holds its centre and is at least 1 / this as wide.
PART_OF_FACE = 0.5


def part_of(part, face) -> bool:
    """Whether box ``part`` lies in box ``face`` (its centre inside) at most half as wide."""
    cx, cy = (part[0] + part[2]) / 2, (part[1] + part[3]) / 2
    inside = face[0] <= cx <= face[2] and face[1] <= cy <= face[3]
    return inside and longer_side(part) <= PART_OF_FACE * longer_side(face)


def area(box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def longer_side(box) -> float:
    """A box's longer side: the face size that size bins and crop rules go by."""
    return max(box[2] - box[0], box[3] - box[1])


def intersection(a, b) -> float:
    """Area shared by two x1, y1, x2, y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy


def _shared(a, b) -> float:
    """Intersection of two boxes over the smaller one's area."""
    smaller = min(area(a), area(b))
    return intersection(a, b) / smaller if smaller > 0 else 0.0
