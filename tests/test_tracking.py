"""Tracking between detections: ids persist, boxes follow motion, labels do not flicker."""

import numpy as np
import pytest
from conftest import fixture_bgr, on_canvas

from app.config import TrackingConfig
from app.tracking import Track, TrackingPipeline, iou, match


def test_iou_known_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_match_prefers_best_overlap():
    tracks = [
        Track(1, np.array([0, 0, 10, 10], np.float32), 1.0),
        Track(2, np.array([50, 50, 60, 60], np.float32), 1.0),
    ]
    boxes = [np.array([51, 51, 61, 61]), np.array([1, 1, 11, 11]), np.array([200, 0, 210, 9])]
    assert match(tracks, boxes, 0.3) == {0: 1, 1: 0}


def shifted(frame, dx):
    out = np.full_like(frame, 110)
    if dx >= 0:
        out[:, dx:] = frame[:, : frame.shape[1] - dx]
    return out


def test_box_follows_a_moving_face_between_detections(pipeline):
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    tracker = TrackingPipeline(pipeline, TrackingConfig(detect_every=10, smooth_window=3))
    first = tracker.process(frame).faces
    assert len(first) == 1
    for step in range(1, 5):
        faces = tracker.process(shifted(frame, 6 * step)).faces
        assert [f.track_id for f in faces] == [first[0].track_id]
        assert faces[0].box[0] == pytest.approx(first[0].box[0] + 6 * step, abs=3)
        assert faces[0].label == "no_mask"
    assert tracker.tracks[0].id == first[0].track_id


def test_one_bad_frame_does_not_flip_the_label(pipeline):
    no_mask = on_canvas(fixture_bgr("no_mask_1.jpg"))
    mask = on_canvas(fixture_bgr("mask_1.jpg"))
    tracker = TrackingPipeline(
        pipeline, TrackingConfig(detect_every=1, smooth_window=5, iou_match=0.1)
    )
    labels = [tracker.process(f).faces[0].label for f in [no_mask] * 4 + [mask] + [no_mask] * 2]
    assert labels == ["no_mask"] * 7
    raw = TrackingPipeline(pipeline, TrackingConfig(detect_every=1, smooth_window=1))
    assert [raw.process(f).faces[0].label for f in (no_mask, mask)] == ["no_mask", "mask"]
