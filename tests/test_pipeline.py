"""The per-frame pipeline on real fixture images: labels, edge boxes, empty frames."""

import numpy as np
import pytest
from conftest import fixture_bgr, on_canvas

from app.config import CropConfig
from app.crops import crop_face, expand_box


@pytest.mark.parametrize(
    "name, label",
    [
        ("no_mask_1.jpg", "no_mask"),
        ("no_mask_2.jpg", "no_mask"),
        ("mask_1.jpg", "mask"),
        ("mask_2.png", "mask"),
    ],
)
@pytest.mark.parametrize("model", ["student", "teacher"])
def test_fixture_face_gets_its_label(pipeline, name, label, model):
    pipeline.use(model)
    result = pipeline.process(on_canvas(fixture_bgr(name)))
    pipeline.use("student")
    assert result.model == model
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.label == label
    assert 0.5 < face.score <= 1.0
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480


def test_blank_frame_has_no_faces(pipeline):
    result = pipeline.process(np.full((480, 640, 3), 127, np.uint8))
    assert result.faces == []


def test_scene_with_several_faces(pipeline):
    result = pipeline.process(fixture_bgr("maksssksksss129.jpg"))
    assert len(result.faces) >= 2
    assert {f.label for f in result.faces} <= {"mask", "no_mask"}


def test_face_cut_by_frame_edge_is_found_and_clipped(pipeline):
    frame = on_canvas(fixture_bgr("no_mask_1.jpg"))
    full = pipeline.process(frame).faces[0].box
    shift = full[0] + (full[2] - full[0]) // 4  # a quarter of the face leaves the frame
    shifted = np.full_like(frame, 110)
    shifted[:, : frame.shape[1] - shift] = frame[:, shift:]
    faces = pipeline.process(shifted).faces
    assert len(faces) == 1
    assert faces[0].box[0] == 0


def test_tiny_frames_do_not_crash(pipeline):
    for shape in [(1, 1, 3), (5, 40, 3), (11, 11, 3)]:
        assert pipeline.process(np.zeros(shape, np.uint8)).faces == []


@pytest.mark.parametrize("box", [(-50, -50, 10, 10), (630, 470, 700, 520), (-5, 100, 2000, 90)])
def test_crop_is_never_empty(box):
    image = np.zeros((480, 640, 3), np.uint8)
    left, top, right, bottom = expand_box(box, 640, 480, CropConfig())
    assert 0 <= left < right <= 640 and 0 <= top < bottom <= 480
    assert crop_face(image, box, CropConfig()).size > 0


def test_a_second_box_on_the_same_face_is_dropped():
    from app.detector import Detection, drop_nested

    # measured on a selfie clip: the tuned nets box one large face twice, and its chin apart
    face = Detection((258, 394, 520, 679), 1.0)
    lower = Detection((250, 510, 493, 779), 0.967)
    upper = Detection((217, 348, 386, 514), 0.939)
    beside = Detection((530, 400, 700, 600), 0.9)  # a neighbour touching the face's box
    kept = drop_nested([upper, lower, beside, face])
    assert kept == [face, beside]
    assert drop_nested([]) == []


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda0", "cuda:-1", "cuda:00", "cuda:\u0663"])
def test_a_device_name_that_is_not_one_is_refused_by_name(name):
    from app.device import DeviceError, resolve_device

    with pytest.raises(DeviceError, match=f"^unknown device '{name}'; use auto, cpu, cuda or"):
        resolve_device(name)
    assert resolve_device("CPU").type == "cpu"


def test_mirror_averages_the_answers_for_the_face_and_its_mirror_image(pipeline):
    from app.classifier import FaceClassifier
    from app.cli import build_parser, pipeline_config

    plain = pipeline.classifier("student")
    assert not plain.mirror and not pipeline_config(build_parser().parse_args([])).mirror
    assert pipeline_config(build_parser().parse_args(["--mirror"])).mirror
    from app.headless import RunSummary

    summary = RunSummary("clip.mp4", "student", "cpu", 2, 2, {"mask": 2}, 1.0, mirror=True, faces=1)
    assert summary.text() == (
        "2 frames, 2 face boxes (mask 2) of 1 face, 2.0 FPS, model student on cpu, mirror on"
    )
    mirrored = FaceClassifier(plain.model, plain.meta, plain.device, mirror=True)
    # A half-covered face, so that the two sides give clearly different answers.
    face = fixture_bgr("no_mask_1.jpg")[:, :, ::-1].copy()
    face[:, : face.shape[1] // 2] = 0
    left, right = plain.classify([face, face[:, ::-1].copy()])
    assert abs(left.probs[0] - right.probs[0]) > 0.1  # far apart next to approx's tolerance
    (both,) = mirrored.classify([face])
    assert both.probs == pytest.approx([(a + b) / 2 for a, b in zip(left.probs, right.probs)])
