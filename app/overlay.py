"""Draw boxes, labels, confidences and the FPS counter onto BGR frames."""

from __future__ import annotations

import cv2
import numpy as np

COLOURS = {"mask": (60, 180, 60), "no_mask": (40, 40, 230)}  # BGR: green and red
OTHER_COLOUR = (200, 200, 200)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_faces(frame: np.ndarray, faces, fps: float | None = None) -> np.ndarray:
    """Draw in place on ``frame`` (BGR) and return it; each face needs box, label and score."""
    height, width = frame.shape[:2]
    thickness = max(1, round(min(height, width) / 240))
    font_scale = max(0.4, min(height, width) / 900)
    for face in faces:
        x1, y1, x2, y2 = face.box
        colour = COLOURS.get(face.label, OTHER_COLOUR)
        cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), colour, thickness)
        text = f"{face.label.replace('_', ' ')} {face.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, FONT, font_scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(y2 + th + 4, height - base)
        cv2.rectangle(frame, (x1, ty - th - 2), (x1 + tw + 4, ty + base), colour, -1)
        cv2.putText(frame, text, (x1 + 2, ty), FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
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
