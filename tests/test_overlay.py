"""The overlay's boxes and labels on a frame, read back from its pixels."""

import numpy as np

from app.overlay import COLOURS, draw_faces
from app.pipeline import Face


def outline_seen(frame: np.ndarray, box, colour) -> float:
    """The share of ``box``'s outline pixels that still have ``colour``."""
    x1, y1, x2, y2 = box
    edge = np.concatenate(
        [frame[y1, x1:x2], frame[y2 - 1, x1:x2], frame[y1:y2, x1], frame[y1:y2, x2 - 1]]
    )
    return float(np.mean(np.all(edge == colour, axis=1)))


def test_a_large_faces_label_leaves_a_small_face_above_it_in_sight():
    frame = np.zeros((240, 320, 3), np.uint8)
    small = Face((20, 34, 44, 58), "no_mask", 0.86, 0.9)  # just above the large face's corner
    large = Face((20, 62, 220, 230), "mask", 0.77, 0.9)
    draw_faces(frame, [large, small])
    assert outline_seen(frame, small.box, COLOURS["no_mask"]) == 1.0
    # the large face's label went below or inside its box, never over the small face
    green = np.all(frame == COLOURS["mask"], axis=2)
    assert not green[:62].any()
    assert green[62:].sum() > 2 * (200 + 168)  # its box and a filled label


def test_a_lone_faces_label_sits_above_its_box_and_below_at_the_top_edge():
    frame = np.zeros((240, 320, 3), np.uint8)
    draw_faces(frame, [Face((100, 100, 160, 170), "mask", 0.95, 0.9)])
    green = np.all(frame == COLOURS["mask"], axis=2)
    assert green[83:86, 100:140].all() and not green[:83].any()  # the label just above

    frame[:] = 0
    draw_faces(frame, [Face((100, 0, 160, 70), "no_mask", 0.95, 0.9)])
    red = np.all(frame == COLOURS["no_mask"], axis=2)
    assert red[73:77, 100:140].all() and not red[87:].any()  # no room above: just below


def test_the_fps_counter_hides_no_label_and_moves_off_a_face_in_its_corner():
    grey = np.full((480, 640, 3), 128, np.uint8)
    frame = grey.copy()
    face = Face((540, 30, 620, 110), "no_mask", 0.97, 0.9)  # just below the counter
    draw_faces(frame, [face], 23.4)
    black = np.all(frame == 0, axis=2)
    rows, cols = np.nonzero(black[:60])
    assert cols.min() > 500 and rows.min() == 4  # the counter stays at the top right
    red = np.all(frame == COLOURS["no_mask"], axis=2)
    label_rows = np.nonzero(red[:, 560:600].sum(axis=1) == 40)[0]  # the label's filled rows
    assert len(label_rows) >= 8 and label_rows.min() > rows.max()  # below the counter

    frame = grey.copy()
    corner = Face((560, 2, 630, 60), "no_mask", 0.97, 0.9)  # right under the counter
    draw_faces(frame, [corner], 23.4)
    assert outline_seen(frame, corner.box, COLOURS["no_mask"]) == 1.0
    black = np.all(frame == 0, axis=2)
    assert black[4:20, 4:60].any() and not black[:, 320:].any()  # moved to the top left


def test_a_frame_narrower_than_the_counter_shows_its_first_digits():
    """Right-aligned, the counter's start fell off a 60 px frame: 30.0 read as 0.0. Its
    first 60 columns must be those of the same counter on a wide frame."""
    wide = draw_faces(np.full((100, 400, 3), 128, np.uint8), [], 30.0)
    left = int(np.nonzero(np.all(wide == 0, axis=2).any(axis=0))[0].min())
    narrow = draw_faces(np.full((100, 60, 3), 128, np.uint8), [], 30.0)
    assert np.array_equal(narrow[:40], wide[:40, left : left + 60])
