"""Detection figures: box overlap, greedy matching to ground truth, VOC average precision.

Boxes are ``(x1, y1, x2, y2)`` corner coordinates in pixels. Matching is one-to-one:
detections are taken in order of falling score and each claims the unclaimed ground-truth
box it overlaps most, if that overlap reaches the IoU threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

Box = tuple[float, float, float, float]

UNMATCHED = -1  # the detection overlaps no free ground-truth box enough: a false positive
IGNORED = -2  # the detection falls on an ignore region: neither true nor false positive


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 when either has no area."""
    return float(iou_matrix([a], [b])[0, 0])


def iou_matrix(boxes_a: Sequence[Box], boxes_b: Sequence[Box]) -> np.ndarray:
    """IoU of every box in ``boxes_a`` with every box in ``boxes_b`` (len(a) x len(b))."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_detections(
    det_boxes: Sequence[Box],
    det_scores: Sequence[float],
    gt_boxes: Sequence[Box],
    iou_threshold: float,
    ignore_boxes: Sequence[Box] = (),
) -> np.ndarray:
    """Match the detections of one image to its ground truth, greedily by score then IoU.

    A detection that claims no ground-truth box but overlaps an ignore region by at least
    ``iou_threshold`` is marked IGNORED; ignore regions may absorb any number of detections.

    Returns:
        One int per detection, in the input order: the index of its ground-truth box,
        UNMATCHED or IGNORED.
    """
    n = len(det_boxes)
    if len(det_scores) != n:
        raise ValueError(f"{n} detection boxes but {len(det_scores)} scores")
    result = np.full(n, UNMATCHED, dtype=np.int64)
    if n == 0:
        return result
    overlaps = iou_matrix(det_boxes, gt_boxes)
    ignore = iou_matrix(det_boxes, ignore_boxes)
    free = np.ones(overlaps.shape[1], dtype=bool)
    for d in np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable"):
        if free.any():
            candidates = np.where(free, overlaps[d], -1.0)
            g = int(np.argmax(candidates))
            if candidates[g] >= iou_threshold:
                free[g] = False
                result[d] = g
                continue
        if ignore.shape[1] and ignore[d].max() >= iou_threshold:
            result[d] = IGNORED
    return result


def average_precision(
    scores: Sequence[float], is_true: Sequence[bool], positives: int
) -> float | None:
    """VOC average precision with all-point interpolation.

    Args:
        scores: confidence of every counted detection (ignored ones left out).
        is_true: whether each detection is a true positive.
        positives: ground-truth boxes of the class, found or not.

    Returns:
        The area under the interpolated precision-recall curve, or None without positives.
    """
    if positives <= 0:
        return None
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.asarray(is_true, dtype=bool)[order]
    if hits.size == 0:
        return 0.0
    tp = np.cumsum(hits)
    fp = np.cumsum(~hits)
    recall = np.concatenate([[0.0], tp / positives, [1.0]])
    precision = np.concatenate([[0.0], tp / (tp + fp), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


@dataclass
class APResult:
    """Average precision of one class and the counts behind it."""

    ap: float | None
    positives: int
    detections: int
    true_positives: int
    false_positives: int
    ignored: int

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.positives if self.positives else None

    @property
    def precision(self) -> float | None:
        counted = self.true_positives + self.false_positives
        return self.true_positives / counted if counted else None

    def as_dict(self) -> dict:
        return {
            "ap": self.ap,
            "positives": self.positives,
            "detections": self.detections,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "ignored": self.ignored,
            "recall": self.recall,
            "precision": self.precision,
        }


class ClassAP:
    """Collects one class's detections over many images, then gives its average precision."""

    def __init__(self, iou_threshold: float = 0.5):
        self.iou_threshold = iou_threshold
        self._scores: list[float] = []
        self._true: list[bool] = []
        self._positives = 0
        self._ignored = 0

    def add_image(
        self,
        det_boxes: Sequence[Box],
        det_scores: Sequence[float],
        gt_boxes: Sequence[Box],
        ignore_boxes: Sequence[Box] = (),
    ) -> None:
        """Add one image: the detections given this class and the boxes of this class."""
        matches = match_detections(
            det_boxes, det_scores, gt_boxes, self.iou_threshold, ignore_boxes
        )
        self._positives += len(gt_boxes)
        for score, match in zip(det_scores, matches):
            if match == IGNORED:
                self._ignored += 1
                continue
            self._scores.append(float(score))
            self._true.append(bool(match >= 0))

    def result(self) -> APResult:
        tp = sum(self._true)
        return APResult(
            average_precision(self._scores, self._true, self._positives),
            self._positives,
            len(self._true) + self._ignored,
            tp,
            len(self._true) - tp,
            self._ignored,
        )
