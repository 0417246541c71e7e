"""The per-frame pipeline shared by the window and headless mode.

frame (BGR) -> MTCNN boxes -> crops in one batch -> classifier -> labelled faces.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from app.classifier import REJECT_LABEL, FaceClassifier, Prediction
from app.config import PipelineConfig
from app.crops import clip_box, crop_face
from app.detector import FaceDetector
from app.device import resolve_device

log = logging.getLogger(__name__)

MODEL_NAMES = ("student", "teacher")


@dataclass(frozen=True)
class Face:
    """One face in a frame: integer box in frame pixels, class label and its probability."""

    box: tuple[int, int, int, int]
    label: str
    score: float
    detector_score: float
    track_id: int | None = None

    def as_event(self) -> dict:
        return {"box": list(self.box), "label": self.label, "score": round(self.score, 4)}


@dataclass
class FrameResult:
    faces: list[Face]
    model: str
    detect_ms: float = 0.0
    classify_ms: float = 0.0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for face in self.faces:
            out[face.label] = out.get(face.label, 0) + 1
        return out


@dataclass
class Pipeline:
    """Holds the detector and the loaded classifiers; the active model can change any time.

    ``weights`` maps a model name to a weights file; missing names use the committed ones.
    """

    config: PipelineConfig = field(default_factory=PipelineConfig)
    weights: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self):
        self.device = resolve_device(self.config.device)
        self.detector = FaceDetector(self.config.detector, self.device)
        self._classifiers: dict[str, FaceClassifier] = {}
        self._lock = threading.Lock()
        self.active = self.config.model
        self.classifier(self.active)

    @property
    def mirror(self) -> bool:
        """Whether each face is also classified mirrored (``--mirror``)."""
        return self.config.mirror

    def classifier(self, name: str) -> FaceClassifier:
        """The classifier called ``name``, loaded on first use (raises CheckpointError)."""
        if name not in MODEL_NAMES:
            raise ValueError(f"unknown model {name!r}; choose student or teacher")
        with self._lock:
            if name not in self._classifiers:
                self._classifiers[name] = FaceClassifier.from_file(
                    self.weights.get(name), name, self.device, self.config.mirror
                )
            return self._classifiers[name]

    def use(self, name: str) -> None:
        """Switch the active classifier; the next frame uses it."""
        self.classifier(name)
        self.active = name

    def process(self, frame_bgr: np.ndarray) -> FrameResult:
        """Detect and classify every face in one BGR frame."""
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        return self.process_rgb(rgb)

    def classify_boxes(self, rgb: np.ndarray, boxes, model: str | None = None) -> list[Prediction]:
        """Classify the crops at ``boxes`` of an RGB frame in one batch with ``model`` (by
        default the active one, which another thread may change at any moment)."""
        crops = [crop_face(rgb, box, self.config.crop) for box in boxes]
        return self.classifier(model or self.active).classify(crops)

    def process_rgb(self, rgb: np.ndarray) -> FrameResult:
        name = self.active
        start = time.perf_counter()
        detections = self.detector.detect(rgb)
        detected = time.perf_counter()
        predictions = self.classify_boxes(rgb, [d.box for d in detections], name)
        done = time.perf_counter()
        height, width = rgb.shape[:2]
        faces = [
            Face(clip_box(d.box, width, height), p.label, p.score, d.score)
            for d, p in zip(detections, predictions)
            if p.label != REJECT_LABEL
        ]
        return FrameResult(faces, name, (detected - start) * 1000, (done - detected) * 1000)
