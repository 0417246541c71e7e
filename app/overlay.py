"""Draw boxes, labels, confidences and the FPS counter onto BGR frames."""

from __future__ import annotations

import cv2
import numpy as np

COLOURS = {"mask": (60, 180, 60), "no_mask": (40, 40, 230)}  # BGR: green and red
OTHER_COLOUR = (200, 200, 200)
FONT = cv2.FONT_HERSHEY_SIMPLEX


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2


def _label_spot(box: Rect, size: tuple[int, int], taken: np.ndarray, frame: tuple[int, int]):
    """Where a face's label goes: above its box, below it, or just inside its top, whichever
    in the frame covers least of the other faces' boxes and labels (``taken``, an (N, 4)
    array of rectangles), so that a crowd's labels do not hide a small face next to a large
    one. Returns the label's rectangle; ties keep that order."""
    (width, height), (x1, y1, _, y2) = frame, box
    label_w, label_h = size
    left = max(0, min(x1, width - label_w))
    tops = (y1 - 3 - label_h, y2 + 3, y1 + 3)  # above, below, inside
    spots = [(left, top, left + label_w, top + label_h) for top in tops]
    inside = np.array([spot for spot in spots if spot[1] >= 0 and spot[3] <= height])
    if not len(inside):  # a frame lower than a label: at the top
        return (left, 0, left + label_w, label_h)
    if not len(taken):
        return tuple(int(v) for v in inside[0])
    across = np.minimum(inside[:, None, 2], taken[None, :, 2]) - np.maximum(
        inside[:, None, 0], taken[None, :, 0]
    )
    down = np.minimum(inside[:, None, 3], taken[None, :, 3]) - np.maximum(
        inside[:, None, 1], taken[None, :, 1]
    )
    covered = (np.clip(across, 0, None) * np.clip(down, 0, None)).sum(axis=1)
    return tuple(int(v) for v in inside[int(np.argmin(covered))])


def draw_faces(frame: np.ndarray, faces, fps: float | None = None) -> np.ndarray:
    """Draw in place on ``frame`` (BGR) and return it; each face needs box, label and score.
    Every box is drawn before any label, and each label is put where it hides least."""
    height, width = frame.shape[:2]
    thickness = max(1, round(min(height, width) / 240))
    font_scale = max(0.4, min(height, width) / 900)
    boxes = [tuple(int(v) for v in face.box) for face in faces]
    for face, (x1, y1, x2, y2) in zip(faces, boxes):
        colour = COLOURS.get(face.label, OTHER_COLOUR)
        cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), colour, thickness)
    labels: list[Rect] = []
    for index, face in enumerate(faces):
        colour = COLOURS.get(face.label, OTHER_COLOUR)
        text = f"{face.label.replace('_', ' ')} {face.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, FONT, font_scale, 1)
        others = [box for i, box in enumerate(boxes) if i != index]
        taken = np.array(others + labels, dtype=np.int64).reshape(-1, 4)
        spot = _label_spot(boxes[index], (tw + 4, th + base + 2), taken, (width, height))
        labels.append(spot)
        cv2.rectangle(frame, spot[:2], (spot[2] - 1, spot[3] - 1), colour, -1)
        origin = (spot[0] + 2, spot[1] + th + 1)
        cv2.putText(frame, text, origin, FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    if fps is not None:
        text = f"{fps:.1f} FPS"
        (tw, th), base = cv2.getTextSize(text, FONT, font_scale * 1.2, 2)
        cv2.rectangle(frame, (width - tw - 12, 4), (width - 4, th + base + 10), (0, 0, 0), -1)
        cv2.putText(
            frame,
            text,
            (width - tw - 8, th + 8),
            FONT,
            font_scale * 1.2,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
    return frame
