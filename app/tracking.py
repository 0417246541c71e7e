"""Face tracks between detections: ids, optical-flow carried boxes and smoothed labels.

The live path runs MTCNN only on every n-th frame. In between, each track's box follows the
median Lucas-Kanade flow of a grid of points inside it, and the crop is classified again
(cheap with the student), so labels stay current while the detector rests. A track's shown
label is decided over its recent classifications so one bad frame does not flip it.

A cut (the picture changes wholesale, as in edited video or a camera switch) ends every track
and brings the detector forward to that frame: carried across a cut, a box would sit on
whatever is now there and be classified as a face.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from app.classifier import REJECT_LABEL
from app.config import TrackingConfig
from app.crops import clip_box
from app.detector import area, intersection
from app.pipeline import Face, FrameResult, Pipeline

FLOW_GRID = 5
FLOW_WINDOW = (15, 15)
FLOW_MAX_SIDE = 480  # flow is computed on a frame no larger than this
FLOW_FB_ERROR = 1.0  # px: a point whose flow back does not return this close is not followed
# A cut: mean absolute difference of 32x24 grey thumbnails of two frames, out of 255. On the
# shared clips real motion stays under 11 (a fast selfie swing) and cuts reach 40-84.
CUT_THUMB = (32, 24)
CUT_DIFF = 30.0


def iou(a, b) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: np.ndarray  # float x1, y1, x2, y2
    detector_score: float
    probs: deque = field(default_factory=deque)  # recent class-probability vectors
    misses: int = 0

    def vote(self, class_names) -> tuple[str, float]:
        """The label with the highest mean probability over the window, and that mean."""
        mean = np.mean(np.stack(self.probs), axis=0)
        k = int(mean.argmax())
        return class_names[k], float(mean[k])


def match(tracks: list[Track], boxes: list, threshold: float) -> dict[int, int]:
    """Greedy IoU matching, best pairs first: detection index -> track index."""
    pairs = sorted(
        ((iou(t.box, b), ti, di) for ti, t in enumerate(tracks) for di, b in enumerate(boxes)),
        reverse=True,
    )
    used_t, used_d, out = set(), set(), {}
    for overlap, ti, di in pairs:
        if overlap < threshold or ti in used_t or di in used_d:
            continue
        used_t.add(ti)
        used_d.add(di)
        out[di] = ti
    return out


def flow_shift(prev_gray: np.ndarray, gray: np.ndarray, box) -> tuple[float, float] | None:
    """Median displacement of grid points inside ``box`` between two gray frames."""
    x1, y1, x2, y2 = box
    xs = np.linspace(x1 + (x2 - x1) * 0.2, x2 - (x2 - x1) * 0.2, FLOW_GRID)
    ys = np.linspace(y1 + (y2 - y1) * 0.2, y2 - (y2 - y1) * 0.2, FLOW_GRID)
    points = np.array([[x, y] for y in ys for x in xs], np.float32).reshape(-1, 1, 2)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(
        prev_gray, gray, points, None, winSize=FLOW_WINDOW, maxLevel=2
    )
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(
        gray, prev_gray, moved, None, winSize=FLOW_WINDOW, maxLevel=2
    )
    round_trip = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
    good = (status.reshape(-1) == 1) & (status_back.reshape(-1) == 1)
    good &= round_trip < FLOW_FB_ERROR
    if good.sum() < 3:
        return None
    delta = (moved - points).reshape(-1, 2)[good]
    dx, dy = np.median(delta, axis=0)
    return float(dx), float(dy)


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """A tiny float copy of a grey frame, for telling cuts from motion."""
    return cv2.resize(gray, CUT_THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


def is_cut(prev_thumb: np.ndarray, thumb: np.ndarray) -> bool:
    """Whether two consecutive frames show different pictures rather than motion."""
    return float(np.abs(thumb - prev_thumb).mean()) > CUT_DIFF


class TrackingPipeline:
    """Wraps a Pipeline: detection every ``detect_every`` frames, tracking in between.

    ``process`` has the same contract as ``Pipeline.process``; faces carry a ``track_id`` and
    the smoothed label. With ``detect_every=1`` and ``smooth_window=1`` it equals the pipeline.
    """

    def __init__(self, pipeline: Pipeline, config: TrackingConfig | None = None):
        self.pipeline = pipeline
        self.config = config or pipeline.config.tracking
        self.reset()

    @property
    def active(self) -> str:
        return self.pipeline.active

    @property
    def device(self):
        return self.pipeline.device

    @property
    def mirror(self) -> bool:
        return self.pipeline.mirror

    def use(self, name: str) -> None:
        """Classify with ``name`` from the next frame; the tracks' votes start afresh then."""
        self.pipeline.use(name)

    def reset(self) -> None:
        """Forget all tracks (a new source, or a seek)."""
        self.tracks: list[Track] = []
        self._voters = self.pipeline.active  # the model whose answers the tracks hold
        self._ids = itertools.count(1)
        self._frame_index = 0
        self._prev_gray: np.ndarray | None = None
        self._prev_thumb: np.ndarray | None = None
        self._flow_scale = 1.0
        self.cuts = 0  # cuts seen since the last reset

    def _gray(self, frame_bgr: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        longest = max(gray.shape)
        self._flow_scale = min(1.0, FLOW_MAX_SIDE / longest)
        if self._flow_scale < 1.0:
            height, width = gray.shape
            size = (  # a 1 x 1000 frame must not shrink to no pixels at all
                max(1, round(width * self._flow_scale)),
                max(1, round(height * self._flow_scale)),
            )
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return gray

    def process(self, frame_bgr: np.ndarray) -> FrameResult:
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        gray = self._gray(frame_bgr)
        start = time.perf_counter()
        every = max(1, self.config.detect_every)
        thumb = thumbnail(gray)
        if self._prev_thumb is not None and is_cut(self._prev_thumb, thumb):
            self.tracks = []  # ids go on counting: a face after the cut is a new face
            self._frame_index = 0
            self.cuts += 1
        self._prev_thumb = thumb
        detect_now = self._frame_index % every == 0 or self._prev_gray is None
        if detect_now:
            self._update_from_detector(rgb)
        else:
            self._carry(gray, rgb.shape[1], rgb.shape[0])
        detected = time.perf_counter()
        self._prev_gray = gray
        self._frame_index += 1
        model = self.pipeline.active  # read once: a switch lands between frames, never inside
        faces = self._classify(rgb, model)
        done = time.perf_counter()
        return FrameResult(
            faces,
            model,
            (detected - start) * 1000 if detect_now else 0.0,
            (done - detected) * 1000,
        )

    def _update_from_detector(self, rgb: np.ndarray) -> None:
        detections = self.pipeline.detector.detect(rgb)
        boxes = [np.array(d.box, np.float32) for d in detections]
        matched = match(self.tracks, boxes, self.config.iou_match)
        kept: list[Track] = []
        for ti, track in enumerate(self.tracks):
            if ti not in matched.values():
                track.misses += 1
                if track.misses <= self.config.max_misses:
                    kept.append(track)
        for di, det in enumerate(detections):
            if di in matched:
                track = self.tracks[matched[di]]
                track.box, track.detector_score, track.misses = boxes[di], det.score, 0
            else:
                track = Track(
                    next(self._ids),
                    boxes[di],
                    det.score,
                    deque(maxlen=max(1, self.config.smooth_window)),
                )
            kept.append(track)
        self.tracks = sorted(kept, key=lambda t: t.id)

    def _carry(self, gray: np.ndarray, width: int, height: int) -> None:
        s = self._flow_scale
        for track in self.tracks:
            shift = flow_shift(self._prev_gray, gray, track.box * s)
            if shift is not None:
                track.box = track.box + np.array([shift[0], shift[1]] * 2, np.float32) / s
        self.tracks = [
            t
            for t in self.tracks
            if t.box[2] > 0 and t.box[3] > 0 and t.box[0] < width and t.box[1] < height
        ]

    def _classify(self, rgb: np.ndarray, model: str) -> list[Face]:
        if model != self._voters:  # the other model's answers must not vote with this one's
            for track in self.tracks:
                track.probs.clear()
            self._voters = model
        if not self.tracks:
            return []
        names = self.pipeline.classifier(model).meta.class_names
        predictions = self.pipeline.classify_boxes(rgb, [t.box for t in self.tracks], model)
        height, width = rgb.shape[:2]
        faces = []
        for track, pred in zip(self.tracks, predictions):
            track.probs.append(np.asarray(pred.probs, np.float32))
            label, score = track.vote(names)
            if label == REJECT_LABEL:  # the classifier says this box holds no face
                continue
            faces.append(
                Face(
                    clip_box(track.box, width, height), label, score, track.detector_score, track.id
                )
            )
        return faces
