"""Training windows for MTCNN's stages, cut from the train split of an annotated scenes set.

Each window gets a class and, for faces, the box-regression target that maps it onto the
annotated face:

- positive: IoU >= 0.65 with a face; part: 0.4-0.65 (regression only); negative: < 0.3.
- P-Net windows (12 px) are random squares around each face and across the photo.
- R-Net (24 px) and O-Net (48 px) windows are the boxes the stage before really proposes on
  the photo (its near misses are the hard negatives), plus jittered squares around every
  face so that faces the old stages missed are learnt too.

Regression targets follow facenet-pytorch's convention (offsets in units of the window's
side), and point at the annotated box, so the tuned detector also learns this set's box
convention (its boxes sit lower on the face than stock MTCNN's).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from tqdm import tqdm

from training import cascade
from training.detection_metrics import iou_matrix

log = logging.getLogger(__name__)

POSITIVE, PART, NEGATIVE = 0.65, 0.4, 0.3
LABEL_POSITIVE, LABEL_PART, LABEL_NEGATIVE = 1, -1, 0
MIN_FACE_SIDE = 6  # annotated faces smaller than this are too small to teach anything


@dataclass
class Samples:
    """Windows of one stage: N x 3 x S x S normalised, labels (1 / 0 / -1) and N x 4 offsets."""

    windows: torch.Tensor
    labels: torch.Tensor
    offsets: torch.Tensor

    def counts(self) -> dict[str, int]:
        names = {LABEL_POSITIVE: "positive", LABEL_PART: "part", LABEL_NEGATIVE: "negative"}
        return {names[k]: v for k, v in sorted(Counter(self.labels.tolist()).items())}

    @staticmethod
    def join(parts: list[Samples], size: int) -> Samples:
        if not parts:
            return Samples(
                torch.zeros(0, 3, size, size), torch.zeros(0, dtype=torch.long), torch.zeros(0, 4)
            )
        return Samples(
            *(torch.cat(t) for t in zip(*((p.windows, p.labels, p.offsets) for p in parts)))
        )


def offsets_to(windows: np.ndarray, faces: np.ndarray, inclusive: bool) -> np.ndarray:
    """Regression targets that move each window onto its face (both N x 4 corner boxes).

    ``inclusive`` follows ``bbreg`` (R-Net, O-Net), whose side is ``x2 - x1 + 1``; P-Net's
    offsets use ``x2 - x1``.
    """
    extra = 1.0 if inclusive else 0.0
    w = windows[:, 2] - windows[:, 0] + extra
    h = windows[:, 3] - windows[:, 1] + extra
    scale = np.stack([w, h, w, h], axis=1)
    return ((faces - windows[:, :4]) / scale).astype(np.float32)


def label_windows(windows: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class of each window (1, -1, 0, or 99 to drop) and the index of its nearest face."""
    if len(faces) == 0:
        return np.zeros(len(windows), dtype=int), np.zeros(len(windows), dtype=int)
    overlaps = iou_matrix([tuple(w) for w in windows[:, :4]], [tuple(f) for f in faces])
    best, nearest = overlaps.max(1), overlaps.argmax(1)
    labels = np.full(len(windows), 99)
    labels[best >= POSITIVE] = LABEL_POSITIVE
    labels[(best >= PART) & (best < POSITIVE)] = LABEL_PART
    labels[best < NEGATIVE] = LABEL_NEGATIVE
    return labels, nearest


def jittered_squares(
    faces: np.ndarray, per_face: int, rng: np.random.Generator, repeats: np.ndarray | None = None
) -> np.ndarray:
    """Squares around each face, shifted and scaled a little (mostly positives and parts).

    ``repeats`` multiplies ``per_face`` for each face (rarer kinds of face get more).
    """
    out = []
    repeats = np.ones(len(faces), dtype=int) if repeats is None else repeats
    for (x1, y1, x2, y2), times in zip(faces, repeats):
        w, h = x2 - x1, y2 - y1
        if max(w, h) < MIN_FACE_SIDE:
            continue
        for _ in range(per_face * int(times)):
            side = max(w, h) * rng.uniform(0.8, 1.25)
            cx = (x1 + x2) / 2 + rng.uniform(-0.2, 0.2) * w
            cy = (y1 + y2) / 2 + rng.uniform(-0.2, 0.2) * h
            out.append((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    return np.array(out, dtype=np.float32).reshape(-1, 4)


def random_squares(
    height: int, width: int, count: int, smallest: float, rng: np.random.Generator
) -> np.ndarray:
    """Squares anywhere in the photo, of sides from ``smallest`` to half the shorter side."""
    largest = max(smallest + 1, min(height, width) / 2)
    sides = np.exp(rng.uniform(np.log(smallest), np.log(largest), count))
    x1 = rng.uniform(0, np.maximum(1, width - sides))
    y1 = rng.uniform(0, np.maximum(1, height - sides))
    return np.stack([x1, y1, x1 + sides, y1 + sides], axis=1).astype(np.float32)


def balance(labels: np.ndarray, negatives_per_face: int, rng: np.random.Generator) -> np.ndarray:
    """Indices to keep: every face window, at most ``negatives_per_face`` negatives per one."""
    faces = np.flatnonzero(labels != LABEL_NEGATIVE)
    faces = faces[labels[faces] != 99]
    negatives = np.flatnonzero(labels == LABEL_NEGATIVE)
    limit = max(negatives_per_face * max(len(faces), 1), 8)
    if len(negatives) > limit:
        negatives = rng.choice(negatives, limit, replace=False)
    return np.concatenate([faces, negatives])


def pnet_samples(
    image_rgb: np.ndarray,
    faces: np.ndarray,
    rng: np.random.Generator,
    per_face: int = 8,
    repeats: np.ndarray | None = None,
) -> Samples:
    """12 px windows for P-Net: jittered squares around faces and random ones elsewhere."""
    h, w = image_rgb.shape[:2]
    windows = np.concatenate(
        [
            jittered_squares(faces, per_face, rng, repeats),
            random_squares(h, w, 40 + 10 * len(faces), 12, rng),
        ]
    )
    labels, nearest = label_windows(windows, faces)
    keep = balance(labels, 3, rng)
    windows, labels = windows[keep], labels[keep]
    offsets = np.zeros((len(windows), 4), dtype=np.float32)
    if len(faces):
        offsets = offsets_to(windows, faces[nearest[keep]], inclusive=False)
    pixels = [square_crop(image_rgb, box, 12) for box in windows]
    batch = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() if pixels else None
    if batch is None:
        return Samples.join([], 12)
    return Samples(cascade.normalise(batch), torch.from_numpy(labels), torch.from_numpy(offsets))


def square_crop(image_rgb: np.ndarray, box, size: int) -> np.ndarray:
    """The window resized to ``size``, zero-filled where it leaves the photo (P-Net's view).

    Only the part inside the photo is resized, onto its place in the ``size`` square, so a
    window far larger than the photo costs no more memory than the photo itself.
    """
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    side = max(1, x2 - x1)
    h, w = image_rgb.shape[:2]
    sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(w, x1 + side), min(h, y1 + side)
    if (sx1, sy1, sx2, sy2) == (x1, y1, x1 + side, y1 + side):  # wholly inside
        return cv2.resize(image_rgb[sy1:sy2, sx1:sx2], (size, size), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    scale = size / side
    tx1, ty1 = round((sx1 - x1) * scale), round((sy1 - y1) * scale)
    tx2, ty2 = round((sx2 - x1) * scale), round((sy2 - y1) * scale)
    if sx2 > sx1 and sy2 > sy1 and tx2 > tx1 and ty2 > ty1:
        part = image_rgb[sy1:sy2, sx1:sx2]
        out[ty1:ty2, tx1:tx2] = cv2.resize(
            part, (tx2 - tx1, ty2 - ty1), interpolation=cv2.INTER_AREA
        )
    return out


def stage_samples(
    image: torch.Tensor,
    faces: np.ndarray,
    candidates: torch.Tensor,
    size: int,
    rng: np.random.Generator,
    per_face: int = 6,
    repeats: np.ndarray | None = None,
) -> Samples:
    """R-Net (24) or O-Net (48) windows: the earlier stage's candidates plus face jitter.

    ``image`` is the photo as ``cascade.as_batch`` lays it out, the stages' own input.
    """
    windows = np.concatenate(
        [
            candidates[:, :4].cpu().numpy().astype(np.float32),
            jittered_squares(faces, per_face, rng, repeats),
        ]
    )
    if len(windows) == 0:
        return Samples.join([], size)
    labels, nearest = label_windows(windows, faces)
    keep = balance(labels, 3, rng)
    windows, labels = windows[keep], labels[keep]
    batch, kept = cascade.crops(image, torch.from_numpy(windows), size)
    windows, labels, nearest = windows[kept], labels[kept], nearest[keep][kept]
    offsets = np.zeros((len(windows), 4), dtype=np.float32)
    if len(faces):
        offsets = offsets_to(windows, faces[nearest], inclusive=True)
    return Samples(batch, torch.from_numpy(labels), torch.from_numpy(offsets))


def collect(
    scenes: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    stage: str,
    nets=None,
    min_face: float = 12,
    thresholds=(0.4, 0.4),
    seed: int = 0,
    progress: bool = True,
) -> Samples:
    """Windows of ``stage`` ("pnet", "rnet" or "onet") from (photo, face boxes, repeats).

    For R-Net the candidates are ``nets``' P-Net proposals at ``thresholds[0]``; for O-Net,
    what its R-Net keeps of them at ``thresholds[1]``.
    """
    rng = np.random.default_rng(seed)
    size = cascade.WINDOW[stage]
    parts = []
    for image, faces, repeats in tqdm(
        scenes, desc=f"{stage} windows", unit="img", disable=not progress
    ):
        if stage == "pnet":
            parts.append(pnet_samples(image, faces, rng, repeats=repeats))
            continue
        with torch.inference_mode():
            batch = cascade.as_batch(image, torch.device("cpu"))
            candidates = cascade.propose(nets.pnet, batch, min_face, 0.709, thresholds[0])
            if stage == "onet":
                candidates = cascade.refine(
                    nets.rnet, batch, candidates, 24, thresholds[1], last=False
                )
        parts.append(stage_samples(batch, faces, candidates, size, rng, repeats=repeats))
    samples = Samples.join(parts, size)
    log.info("%s windows: %s", stage, samples.counts())
    return samples
