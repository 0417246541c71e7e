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


def test_a_cut_ends_the_tracks_and_runs_the_detector_at_once(pipeline):
    """No box is carried onto the picture after a cut, even between detections."""
    face = on_canvas(fixture_bgr("no_mask_1.jpg"))
    empty = np.full_like(face, 20)  # a dark, faceless picture: far from the grey canvas
    tracker = TrackingPipeline(pipeline, TrackingConfig(detect_every=5, smooth_window=5))
    before = [tracker.process(face).faces for _ in range(2)]
    assert [len(f) for f in before] == [1, 1]
    after = [tracker.process(empty) for _ in range(3)]
    assert [len(r.faces) for r in after] == [0, 0, 0]
    assert after[0].detect_ms > 0  # the detector ran on the first frame after the cut
    assert tracker.cuts == 1
    back = tracker.process(face)  # a cut again: the face is found at once, as a new track
    assert tracker.cuts == 2 and len(back.faces) == 1
    assert back.faces[0].track_id != before[0][0].track_id


def test_motion_is_not_a_cut(pipeline):
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    tracker = TrackingPipeline(pipeline, TrackingConfig(detect_every=10))
    for step in range(6):
        tracker.process(shifted(frame, 8 * step))
    assert tracker.cuts == 0 and len(tracker.tracks) == 1


def test_a_model_switched_from_another_thread_never_votes_with_the_old_one(pipeline):
    """The window switches ``pipeline.active`` on its own thread, between any two lines of
    the worker's frame: the tracks must then hold the new model's answers only."""
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    tracker = TrackingPipeline(pipeline, TrackingConfig(detect_every=2, smooth_window=5))
    try:
        for _ in range(3):
            tracker.process(frame)
        assert len(tracker.tracks[0].probs) == 3
        pipeline.use("teacher")  # not through tracker.use: as the switcher thread does
        result = tracker.process(frame)
        assert result.model == "teacher" and len(tracker.tracks[0].probs) == 1
    finally:
        pipeline.use("student")
