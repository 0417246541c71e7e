"""Draw boxes, labels, confidences and the FPS counter onto BGR frames."""

from __future__ import annotations

import cv2
import numpy as np

COLOURS = {"mask": (60, 180, 60), "no_mask": (40, 40, 230)}  # BGR: green and red
OTHER_COLOUR = (200, 200, 200)
FONT = cv2.FONT_HERSHEY_SIMPLEX


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2


def _covered(spots: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """For each rectangle of ``spots`` (M, 4), the area it shares with those of ``taken``
    (N, 4), summed."""
    across = np.minimum(spots[:, None, 2], taken[None, :, 2]) - np.maximum(
        spots[:, None, 0], taken[None, :, 0]
    )
    down = np.minimum(spots[:, None, 3], taken[None, :, 3]) - np.maximum(
        spots[:, None, 1], taken[None, :, 1]
    )
    return (np.clip(across, 0, None) * np.clip(down, 0, None)).sum(axis=1)


def _label_spot(box: Rect, size: tuple[int, int], taken: np.ndarray, frame: tuple[int, int]):
    """Where a face's label goes: above its box, below it, or just inside its top, whichever
    in the frame covers least of the other faces' boxes and labels and the FPS counter
    (``taken``, an (N, 4) array of rectangles), so that a crowd's labels do not hide a small
    face next to a large one. Returns the label's rectangle; ties keep that order."""
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
    return tuple(int(v) for v in inside[int(np.argmin(_covered(inside, taken)))])


FPS_MARGIN = 4  # pixels between the FPS counter and the frame's edges


def _fps_spot(size: tuple[int, int], boxes: list[Rect], frame: tuple[int, int]) -> Rect:
    """Where the FPS counter goes: the top right corner, unless a face lies under it; then
    the corner (top left, bottom right, bottom left) that covers least of the faces' boxes.
    It moves only while a face is in its corner, so the reading stays easy to find."""
    (width, height), (fps_w, fps_h) = frame, size
    # A frame narrower (or lower) than the counter gets it from its left (top) edge: cut on
    # the right, the reading keeps its first digits instead of losing them.
    right = max(0, width - FPS_MARGIN - fps_w)
    bottom = max(0, height - FPS_MARGIN - fps_h)
    corners = [(x, y) for y in (FPS_MARGIN, bottom) for x in (right, FPS_MARGIN)]
    spots = np.array([(x, y, x + fps_w, y + fps_h) for x, y in corners])
    if not boxes:
        return tuple(int(v) for v in spots[0])
    covered = _covered(spots, np.array(boxes, dtype=np.int64).reshape(-1, 4))
    return tuple(int(v) for v in spots[int(np.argmin(covered))])


def draw_faces(frame: np.ndarray, faces, fps: float | None = None) -> np.ndarray:
    """Draw in place on ``frame`` (BGR) and return it; each face needs box, label and score.
    Every box is drawn before any label, each label is put where it hides least, and the
    FPS counter (when ``fps`` is given) goes in a corner free of faces."""
    height, width = frame.shape[:2]
    thickness = max(1, round(min(height, width) / 240))
    font_scale = max(0.4, min(height, width) / 900)
    boxes = [tuple(int(v) for v in face.box) for face in faces]
    for face, (x1, y1, x2, y2) in zip(faces, boxes):
        colour = COLOURS.get(face.label, OTHER_COLOUR)
        cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), colour, thickness)
    fps_text = None if fps is None else f"{fps:.1f} FPS"
    labels: list[Rect] = []
    if fps_text is not None:
        (fps_w, fps_h), base = cv2.getTextSize(fps_text, FONT, font_scale * 1.2, 2)
        fps_spot = _fps_spot((fps_w + 8, fps_h + base + 6), boxes, (width, height))
        labels.append(fps_spot)  # no label is put over the counter where it has a choice
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
    if fps_text is not None:
        x1, y1, x2, y2 = fps_spot
        cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 0, 0), -1)
        origin = (x1 + 4, y1 + fps_h + 4)
        cv2.putText(
            frame, fps_text, origin, FONT, font_scale * 1.2, (255, 255, 255), 2, cv2.LINE_AA
        )
    return frame
