"""Turn face boxes into classifier crops; shared by the app and the training data preparation.

Boxes may cross the frame edge; crops are clipped to the frame and never empty.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.config import CropConfig

Box = tuple[float, float, float, float]


def expand_box(box: Box, width: int, height: int, crop: CropConfig) -> tuple[int, int, int, int]:
    """Widen a box by the margin, optionally square it, and clip it to the frame.

    The result always holds at least one pixel, even for a box wholly outside the frame.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    if crop.square:
        w = h = max(w, h)
    w, h = w * (1 + 2 * crop.margin), h * (1 + 2 * crop.margin)
    left = int(np.clip(round(cx - w / 2), 0, width - 1))
    top = int(np.clip(round(cy - h / 2), 0, height - 1))
    right = int(np.clip(round(cx + w / 2), left + 1, width))
    bottom = int(np.clip(round(cy + h / 2), top + 1, height))
    return left, top, right, bottom


def clip_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Round a detector box to integer pixels inside the frame (for drawing and events)."""
    x1, y1, x2, y2 = box
    x1 = int(np.clip(round(x1), 0, width - 1))
    y1 = int(np.clip(round(y1), 0, height - 1))
    x2 = int(np.clip(round(x2), x1 + 1, width))
    y2 = int(np.clip(round(y2), y1 + 1, height))
    return x1, y1, x2, y2


def crop_face(image: np.ndarray, box: Box, crop: CropConfig) -> np.ndarray:
    """The crop of ``image`` (H x W x 3, any channel order) the classifier sees for ``box``."""
    height, width = image.shape[:2]
    left, top, right, bottom = expand_box(box, width, height, crop)
    return image[top:bottom, left:right]


# How resize_crop resizes, in words for those who feed an exported model the same crops.
RESIZE_RULE = (
    "area averaging when shrinking, bilinear when enlarging (OpenCV INTER_AREA, INTER_LINEAR)"
)


def resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """Resize a crop to ``size`` x ``size`` (see RESIZE_RULE); area averaging when shrinking
    avoids aliasing."""
    h, w = crop.shape[:2]
    interp = cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
