"""Face boxes for the train split of a class-folder set, so detector tuning sees webcam faces.

The scenes set is street photos, mostly of small faces; tuned on it alone, MTCNN unlearns
large, sharp faces (a clear 120 px unmasked face went unfound). The class-folder set has
thousands of such faces but no boxes, so they are labelled here:

- stock MTCNN's boxes, on the photo or, when it finds none, on the photo with a grey border
  (tight crops defeat it), shifted to the scenes set's box convention by the median offset
  between stock boxes and annotated boxes on the scenes train split;
- a photo where stock MTCNN still finds nothing is left out: its face could be the whole
  photo or a small part of it, and a wrong box would teach the detector wrong faces.

Only the ``train`` split of ``training.prepare``'s seeded split is used, so the classifier's
test images stay unseen by the detector too.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from app.config import DetectorConfig
from app.detector import FaceDetector
from app.images import ImageError, read_rgb
from training.dataset_files import find_images
from training.detection_metrics import iou_matrix
from training.prepare import PAD_FRACTION, split_of_images

log = logging.getLogger(__name__)

# Stock MTCNN as facenet-pytorch ships it, with a strict score: these boxes become targets.
STOCK = DetectorConfig(weights="stock", thresholds=(0.6, 0.7, 0.7), min_score=0.95)
MATCH_IOU = 0.4  # a stock box and an annotated box of the same face overlap at least this
MIN_SIDE = 32  # faces used to fit the convention: small ones have noisy boxes
BORDER = (127, 127, 127)

Photo = tuple[np.ndarray, np.ndarray, np.ndarray]  # RGB photo, N x 4 boxes, N repeats


def relative_offsets(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(truth - found) per corner, in units of the found box's width and height."""
    w, h = found[:, 2] - found[:, 0], found[:, 3] - found[:, 1]
    return (truth - found) / np.stack([w, h, w, h], axis=1)


def apply_offsets(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move N x 4 boxes by ``offsets`` (the inverse of ``relative_offsets``)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


def box_convention(scenes: list[Photo], detector: FaceDetector) -> np.ndarray:
    """Median corner offsets from ``detector``'s boxes to the annotated ones (4 floats).

    Raises:
        ValueError: when no annotated face of ``MIN_SIDE`` px or more is found at all.
    """
    offsets = []
    for image, faces, _ in scenes:
        found = np.array([d.box for d in detector.detect(image)], dtype=np.float32)
        if len(found) == 0 or len(faces) == 0:
            continue
        overlaps = iou_matrix([tuple(b) for b in found], [tuple(f) for f in faces])
        best = overlaps.argmax(1)
        keep = overlaps.max(1) >= MATCH_IOU
        keep &= (faces[best, 2:] - faces[best, :2]).max(1) >= MIN_SIDE
        if keep.any():
            offsets.append(relative_offsets(found[keep], faces[best[keep]]))
    if not offsets:
        raise ValueError("stock MTCNN matched no annotated face: no box convention to fit")
    return np.median(np.concatenate(offsets), axis=0).astype(np.float32)


def label_photo(
    rgb: np.ndarray, detector: FaceDetector, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """(photo, N x 4 boxes, rule): the photo to tune on, maybe framed, and its face boxes.

    The rule is ``stock``, ``stock_framed`` or ``no_face`` (no boxes: leave the photo out).
    """
    found = detector.detect(rgb)
    if found:
        boxes = np.array([d.box for d in found], dtype=np.float32)
        return rgb, apply_offsets(boxes, offsets), "stock"
    h, w = rgb.shape[:2]
    pad = int(round(max(h, w) * PAD_FRACTION))
    framed = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=BORDER)
    found = detector.detect(framed)
    if found:
        boxes = np.array([d.box for d in found], dtype=np.float32)
        return framed, apply_offsets(boxes, offsets), "stock_framed"
    return rgb, np.zeros((0, 4), dtype=np.float32), "no_face"


def train_face_photos(
    data: Path, scenes: list[Photo], seed: int, progress: bool = True
) -> tuple[list[Photo], dict]:
    """Labelled train-split photos of class-folder set ``data`` and a record of the rules."""
    found = find_images(Path(data))
    splits = split_of_images(found, seed, progress)
    detector = FaceDetector(STOCK)
    offsets = box_convention(scenes, detector)
    log.info("stock -> annotated box offsets (x1, y1, x2, y2): %s", np.round(offsets, 3))
    photos, rules = [], Counter()
    train = [(p, label) for p, label in found.images if splits.get(str(p)) == "train"]
    for path, label in tqdm(train, desc="face photos", unit="img", disable=not progress):
        try:
            rgb = read_rgb(path)
        except ImageError as exc:
            log.warning("skipped: %s", exc)
            continue
        photo, boxes, rule = label_photo(rgb, detector, offsets)
        rules[f"{label} {rule}"] += 1
        if len(boxes):
            photos.append((photo, boxes, np.ones(len(boxes), dtype=int)))
    record = {
        "data": str(data),
        "photos": len(photos),
        "rules": dict(sorted(rules.items())),
        "stock_offsets": [round(float(v), 4) for v in offsets],
    }
    return photos, record
