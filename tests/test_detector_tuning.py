"""The tuned detector: stage-by-stage cascade, training windows, weights file, tuning command."""

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import FIXTURES, ROOT, fixture_bgr, scenes_copy
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import bbreg

from app.config import DetectorConfig
from app.detector import FaceDetector
from models import detector_checkpoint
from models.detector_checkpoint import DetectorWeightsError
from training import cascade, detector_samples
from training.detector_samples import LABEL_NEGATIVE, LABEL_PART, LABEL_POSITIVE
from training.tune_detector import flip

SCENE = "maksssksksss129"


@pytest.fixture(scope="module")
def stock():
    mtcnn = MTCNN(keep_all=True, post_process=False)
    return mtcnn.eval()


@pytest.fixture(scope="module")
def scene_rgb():
    return np.ascontiguousarray(fixture_bgr(f"{SCENE}.jpg")[:, :, ::-1])


def test_stages_reproduce_mtcnn_detect(stock, scene_rgb):
    """Training sees exactly what the detector's stages see: same final boxes as detect()."""
    stock.min_face_size, stock.thresholds = 20, [0.6, 0.7, 0.7]
    expected, _ = stock.detect(scene_rgb)
    expected = np.asarray(expected, dtype=np.float32)
    stages = cascade.run_stages(stock, scene_rgb, 20, (0.6, 0.7, 0.7))
    assert expected is not None and len(stages.final) == len(expected) >= 2
    found = stages.final[:, :4].numpy()
    order = np.lexsort((found[:, 1], found[:, 0]))
    expected_order = np.lexsort((expected[:, 1], expected[:, 0]))
    assert np.allclose(found[order], expected[expected_order], atol=0.5)
    assert len(stages.proposals) >= len(stages.refined) >= len(stages.final)


def test_offsets_move_a_window_onto_its_face():
    windows = np.array([[10, 20, 50, 60], [100, 100, 124, 124]], dtype=np.float32)
    faces = np.array([[14, 26, 48, 66], [98, 103, 121, 126]], dtype=np.float32)
    offsets = detector_samples.offsets_to(windows, faces, inclusive=True)
    boxes = torch.cat([torch.from_numpy(windows), torch.ones(2, 1)], dim=1)
    moved = bbreg(boxes, torch.from_numpy(offsets))[:, :4].numpy()
    assert np.allclose(moved, faces, atol=1e-4)


def test_flip_mirrors_offsets_with_the_window():
    """A window's face box, mirrored, is the mirrored window's face box."""
    side = 24.0
    offsets = torch.tensor([[0.1, -0.05, -0.2, 0.15]])
    x1, x2 = 0 + offsets[0, 0] * side, side + offsets[0, 2] * side
    _, mirrored = flip(torch.zeros(1, 3, 24, 24), offsets)
    mx1, mx2 = 0 + mirrored[0, 0] * side, side + mirrored[0, 2] * side
    assert torch.isclose(mx1, side - x2) and torch.isclose(mx2, side - x1)
    assert mirrored[0, 1] == offsets[0, 1] and mirrored[0, 3] == offsets[0, 3]


def test_windows_are_labelled_by_overlap(stock, scene_rgb):
    faces = np.array([[50, 50, 90, 95], [200, 60, 230, 95]], dtype=np.float32)
    rng = np.random.default_rng(0)
    samples = detector_samples.pnet_samples(scene_rgb, faces, rng)
    assert samples.windows.shape[1:] == (3, 12, 12)
    assert set(samples.labels.tolist()) == {LABEL_POSITIVE, LABEL_PART, LABEL_NEGATIVE}
    negatives = (samples.labels == LABEL_NEGATIVE).sum().item()
    assert negatives <= 3 * (samples.labels != LABEL_NEGATIVE).sum().item()
    batch = cascade.as_batch(scene_rgb, torch.device("cpu"))
    proposals = cascade.propose(stock.pnet, batch, 20, 0.709, 0.6)
    onet = detector_samples.stage_samples(batch, faces, proposals, 48, rng)
    assert onet.windows.shape[1:] == (3, 48, 48)
    assert len(onet.labels) == len(onet.offsets) == len(onet.windows)
    assert (onet.labels == LABEL_PART).any() or (onet.labels == LABEL_POSITIVE).any()


def test_weights_file_round_trip_and_bad_files(tmp_path, stock):
    path = tmp_path / "detector.pt"
    with torch.no_grad():
        stock.onet.dense6_1.bias[0] += 0.5  # tell the saved weights from the stock ones
    try:
        detector_checkpoint.save(path, stock, {"note": "test"})
        detector = FaceDetector(DetectorConfig(weights=str(path)))
        assert detector.weights == str(path)
        loaded = detector._mtcnn.onet.dense6_1.bias
        assert torch.equal(loaded, stock.onet.dense6_1.bias)
        assert FaceDetector(DetectorConfig(weights="stock")).weights == "stock"
    finally:
        with torch.no_grad():
            stock.onet.dense6_1.bias[0] -= 0.5
    assert detector_checkpoint.identity(str(path)) != "stock"
    assert detector_checkpoint.identity("stock") == "stock"

    (tmp_path / "junk.pt").write_bytes(b"nonsense")
    torch.save({"format": "maskwatch-checkpoint"}, tmp_path / "classifier.pt")
    state = torch.load(path, weights_only=True)
    state["rnet"] = state["pnet"]
    torch.save(state, tmp_path / "mixed.pt")
    for name, message in (
        ("missing.pt", "not found"),
        ("junk.pt", "junk.pt is not a readable weights file"),
        ("classifier.pt", "not a MaskWatch detector weights file"),
        ("mixed.pt", "the rnet weights do not fit MTCNN"),
    ):
        with pytest.raises(DetectorWeightsError, match=message):
            FaceDetector(DetectorConfig(weights=str(tmp_path / name)))


def test_app_names_a_bad_detector_weights_file(tmp_path):
    from conftest import run_app

    (tmp_path / "det.pt").write_bytes(b"nonsense")
    result = run_app("--source", FIXTURES / "mask_1.jpg", "--detector-weights", tmp_path / "det.pt")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "det.pt is not a readable weights file" in last
    assert "Traceback" not in result.stderr


def test_tune_detector_command_writes_weights_that_load(tmp_path):
    scenes = scenes_copy(tmp_path / "scenes")
    out = tmp_path / "new" / "folder" / "detector.pt"  # folders made as distill makes them
    command = [sys.executable, "-m", "training.tune_detector", "--scenes", scenes]
    command += ["--out", out, "--epochs", "1", "--quiet", "--stages", "rnet", "onet"]
    command += ["--work-dir", tmp_path / "work"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "onet: held-out window accuracy" in result.stdout
    meta = detector_checkpoint.read(out)["meta"]
    assert json.loads(out.with_suffix(".json").read_text()) == meta
    assert set(meta["stages"]) == {"rnet", "onet"} and meta["train_scenes"] >= 1
    assert FaceDetector(DetectorConfig(weights=str(out))).weights == str(out)

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr.strip().splitlines()[-1]


def test_detector_weights_that_are_not_finite_or_malformed_are_refused(tmp_path, stock):
    path = tmp_path / "detector.pt"
    detector_checkpoint.save(path, stock, {"note": "test"})
    state = torch.load(path, weights_only=True)
    state["onet"]["dense6_1.bias"][0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    state = torch.load(path, weights_only=True)
    state["meta"] = "not a record"
    torch.save(state, tmp_path / "meta.pt")
    (tmp_path / "folder.pt").mkdir()
    for name, message in (
        ("nan.pt", "onet weight dense6_1.bias is not finite"),
        ("meta.pt", "damaged detector weights file"),
        ("folder.pt", "is a folder, not a detector weights file"),
    ):
        with pytest.raises(DetectorWeightsError, match=message):
            FaceDetector(DetectorConfig(weights=str(tmp_path / name)))


def test_tune_detector_refuses_bad_settings_before_any_work(tmp_path, capsys):
    from training.tune_detector import main

    scenes = tmp_path / "scenes"
    (scenes / "images").mkdir(parents=True)
    (scenes / "annotations").mkdir()
    out = tmp_path / "det.pt"
    (tmp_path / "det.json").write_text('{"mine": "precious"}')
    base = ["--scenes", str(scenes), "--out", str(out), "--quiet"]
    for flags, message in (
        (["--min-face", "0"], "--min-face must be between 6 and 4096 pixels, got 0"),
        (["--mine-thresholds", "2", "nan"], "--mine-thresholds must lie in [0, 1]"),
        (["--stages", "pnet", "pnet"], "names a net twice"),
        ([], "det.json already exists"),
    ):
        assert main(base + flags) == 2, flags
        assert message in capsys.readouterr().err, flags
    assert (tmp_path / "det.json").read_text() == '{"mine": "precious"}' and not out.exists()


def test_tune_detector_refuses_annotations_without_faces(tmp_path, capsys):
    from training.tune_detector import main

    scenes = tmp_path / "scenes"
    (scenes / "images").mkdir(parents=True)
    (scenes / "annotations").mkdir()
    for n in (129, 289, 52):
        shutil.copy(FIXTURES / f"maksssksksss{n}.jpg", scenes / "images")
        (scenes / "annotations" / f"maksssksksss{n}.xml").write_text(
            "<annotation><size><width>400</width><height>300</height></size></annotation>"
        )
    out = tmp_path / "det.pt"
    assert main(["--scenes", str(scenes), "--out", str(out), "--quiet", "--epochs", "1"]) == 2
    assert "hold no face boxes" in capsys.readouterr().err and not out.exists()


def test_stock_box_offsets_round_trip():
    from training.face_photos import apply_offsets, relative_offsets

    found = np.array([[10, 20, 50, 70], [0, 0, 12, 12]], dtype=np.float32)
    truth = np.array([[8, 28, 52, 76], [1, 2, 13, 15]], dtype=np.float32)
    offsets = relative_offsets(found, truth)
    assert np.allclose(offsets[0], [-0.05, 0.16, 0.05, 0.12])
    assert np.allclose(apply_offsets(found, offsets), truth)


def test_face_photos_are_boxed_by_stock_mtcnn_framed_or_left_out():
    """A portrait gets stock MTCNN's box moved by the offsets; a tight crop is framed by a
    grey border first; a photo where stock MTCNN finds no face gets no box at all."""
    from training.face_photos import STOCK, label_photo

    detector = FaceDetector(STOCK)
    offsets = np.array([0.0, 0.1, 0.0, 0.1], dtype=np.float32)
    portrait = np.ascontiguousarray(fixture_bgr("no_mask_2.jpg")[:, :, ::-1])
    photo, boxes, rule = label_photo(portrait, detector, offsets)
    stock_box = np.array(detector.detect(portrait)[0].box)
    assert rule == "stock" and photo is portrait and len(boxes) == 1
    height = stock_box[3] - stock_box[1]
    assert np.allclose(boxes[0][[1, 3]], stock_box[[1, 3]] + 0.1 * height, atol=1e-3)

    other = np.ascontiguousarray(fixture_bgr("no_mask_1.jpg")[:, :, ::-1])
    x1, y1, x2, y2 = (int(v) for v in detector.detect(other)[0].box)
    quarter = (x2 - x1) // 4
    tight = np.ascontiguousarray(other[y1 + (y2 - y1) // 3 : y2, x1 + quarter : x2 - quarter])
    photo, boxes, rule = label_photo(tight, detector, offsets)
    pad = round(max(tight.shape[:2]) * 0.3)
    assert rule == "stock_framed" and len(boxes) == 1
    assert photo.shape[:2] == (tight.shape[0] + 2 * pad, tight.shape[1] + 2 * pad)
    assert (photo[:pad] == 127).all()
    centre_x, centre_y = (boxes[0][0] + boxes[0][2]) / 2, (boxes[0][1] + boxes[0][3]) / 2
    assert pad < centre_x < pad + tight.shape[1] and pad < centre_y < pad + tight.shape[0]

    masked = np.ascontiguousarray(fixture_bgr("mask_1.jpg")[:, :, ::-1])  # N95: stock misses
    photo, boxes, rule = label_photo(masked, detector, offsets)
    assert rule == "no_face" and boxes.shape == (0, 4)


def test_tune_detector_refuses_an_out_not_named_as_pytorch_weights(tmp_path, capsys):
    from training.tune_detector import main

    out = tmp_path / "det.json"  # its own record would replace it
    out.write_text('{"mine": "precious"}')
    scenes = str(scenes_copy(tmp_path / "scenes"))
    for name in ("det.json", "det.onnx", "det"):
        argv = ["--scenes", scenes, "--out", str(tmp_path / name), "--quiet"]
        assert main([*argv, "--overwrite", "--stages", "pnet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"training.tune_detector: error: --out {tmp_path / name}: the tuned detector is "
            "PyTorch weights, and the run's record goes beside them with a .json suffix; "
            "name the weights file with .pt or .pth"
        ]
    assert out.read_text() == '{"mine": "precious"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.json", "scenes"]


def test_tune_detector_replaces_only_detector_weights_even_with_overwrite(tmp_path, capsys):
    from training.tune_detector import main

    student = shutil.copy(ROOT / "models" / "student.pt", tmp_path / "mine.pt")
    before = student.read_bytes()
    argv = ["--scenes", str(scenes_copy(tmp_path / "scenes")), "--out", str(student)]
    assert main([*argv, "--overwrite", "--quiet", "--stages", "pnet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"training.tune_detector: error: --out {student} holds PyTorch weights that are not "
        "MaskWatch detector weights; the tuned detector replaces only an earlier one: write "
        "it elsewhere"
    ]
    assert student.read_bytes() == before and not student.with_suffix(".json").exists()


def test_square_crop_of_a_window_far_beyond_the_photo_costs_little_memory():
    import tracemalloc

    photo = np.random.default_rng(0).integers(0, 255, (225, 400, 3), dtype=np.uint8)
    tracemalloc.start()
    crop = detector_samples.square_crop(photo, (-5000, -5000, 90000, 90000), 12)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert crop.shape == (12, 12, 3) and peak < 2_000_000  # the old canvas took 25 GiB
    assert not crop.any()  # the photo is a speck of under a pixel: black, as before

    inside = detector_samples.square_crop(photo, (10, 20, 110, 120), 12)
    expected = cv2.resize(photo[20:120, 10:110], (12, 12), interpolation=cv2.INTER_AREA)
    assert np.array_equal(inside, expected)
    canvas = np.zeros((100, 100, 3), np.uint8)  # a window half off the left edge
    canvas[:, 50:] = photo[20:120, :50]
    half = detector_samples.square_crop(photo, (-50, 20, 50, 120), 12)
    reference = cv2.resize(canvas, (12, 12), interpolation=cv2.INTER_AREA)
    assert np.abs(half.astype(int) - reference).mean() < 3 and not half[:, :6].any()


def test_face_boxes_are_clipped_to_the_photo_or_left_out(caplog):
    from training.tune_detector import boxes_in_image
    from training.voc import GroundTruth

    faces = [
        GroundTruth((390.0, 10.0, 410.0, 30.0), "with_mask"),  # 10 px over the right edge
        GroundTruth((-5000.0, -5000.0, 90000.0, 90000.0), "without_mask"),
        GroundTruth((5.0, 5.0, 25.0, 25.0), "without_mask"),
    ]
    kept, boxes = boxes_in_image(faces, (225, 400), "scene.xml")
    assert [f.box for f in kept] == [faces[0].box, faces[2].box]
    assert boxes.tolist() == [[390, 10, 400, 30], [5, 5, 25, 25]]
    assert "scene.xml" in caplog.text and "lies mostly outside the 400x225 image" in caplog.text


def test_tune_detector_skips_unusable_annotations_and_photos(tmp_path, caplog):
    from training.tune_detector import main

    scenes = scenes_copy(tmp_path / "scenes")
    nan_box = scenes / "annotations" / "maksssksksss52.xml"
    nan_box.write_text(nan_box.read_text().replace("<xmin>37</xmin>", "<xmin>nan</xmin>", 1))
    far = scenes / "annotations" / "maksssksksss129.xml"
    text = far.read_text()
    start, end = text.index("<bndbox>"), text.index("</bndbox>")
    far.write_text(
        text[:start] + "<bndbox><xmin>-5000</xmin><ymin>-5000</ymin><xmax>90000</xmax>"
        "<ymax>90000</ymax>" + text[end:]
    )
    (scenes / "images" / "maksssksksss289.jpg").write_text("not a photo")
    out = tmp_path / "det.pt"
    argv = ["--scenes", str(scenes), "--out", str(out), "--stages", "pnet", "--epochs", "1"]
    argv += ["--work-dir", str(tmp_path / "work")]
    assert main([*argv, "--quiet", "--device", "cpu"]) == 0, caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("maksssksksss52.xml: <xmin> is 'nan'" in w for w in warnings), warnings
    assert any("maksssksksss129.xml" in w and "mostly outside" in w for w in warnings)
    assert any("maksssksksss289.jpg" in w for w in warnings)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["train_scenes"] == 1 and meta["train_faces"] == 2  # 129 without its far box


def test_detector_weights_of_the_wrong_kind_are_refused_in_one_line(tmp_path, stock):
    path = tmp_path / "tuned.pt"
    detector_checkpoint.save(path, stock, {"note": "copy of stock"})
    state = torch.load(path, weights_only=True)

    def variant(name, change):
        torch.save(change({**state, "pnet": dict(state["pnet"])}), tmp_path / name)
        return tmp_path / name

    numbered = variant("numbered.pt", lambda s: {**s, "pnet": dict(enumerate(s["pnet"].values()))})
    huge = variant("huge.pt", lambda s: {**s, "rnet": {k: v * 1e30 for k, v in s["rnet"].items()}})
    ints = variant("ints.pt", lambda s: {**s, "onet": {k: v.long() for k, v in s["onet"].items()}})
    for file, message in (
        (numbered, "the pnet weights do not fit MTCNN"),
        (huge, "the rnet weights give answers that are not numbers"),
        (ints, "holds torch.int64 numbers, not real ones"),
    ):
        with pytest.raises(DetectorWeightsError) as info:
            FaceDetector(DetectorConfig(weights=str(file)))
        assert message in str(info.value) and "\n" not in str(info.value)
    assert FaceDetector(DetectorConfig(weights=str(path))).weights == str(path)
    from app.config import PipelineConfig
    from app.model_loader import build_pipeline

    config = PipelineConfig(detector=DetectorConfig(weights=str(huge)), device="cpu")
    report = build_pipeline(config, {})
    assert report.pipeline.detector.weights == "stock"
    assert "rnet weights give answers that are not numbers" in report.detector_problem


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "nan"], "--lr must be a finite number above 0, not nan"),
        (["--batch-size", "0"], "--batch-size must be at least 1, not 0"),
        (["--lr", "inf"], "--lr must be a finite number above 0, not inf"),
        (["--lr", "-1"], "--lr must be a finite number above 0, not -1.0"),
        (
            ["--mine-thresholds", "0.4", "inf"],
            "--mine-thresholds must lie in [0, 1], got [0.4, inf]",
        ),
        (["--min-face", "inf"], "--min-face must be between 6 and 4096 pixels, got inf"),
        (["--min-face", "nan"], "--min-face must be between 6 and 4096 pixels, got nan"),
        (["--min-face", "-12"], "--min-face must be between 6 and 4096 pixels, got -12"),
        (["--min-face", "100000"], "--min-face must be between 6 and 4096 pixels, got 100000"),
    ],
)
def test_tuning_settings_are_named_by_their_flag(tmp_path, capsys, flags, message):
    from training.tune_detector import main

    assert main(["--scenes", str(tmp_path), "--out", str(tmp_path / "d.pt"), *flags]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .endswith(f"{message} (--help lists the flags)")
    )


def test_tuning_can_start_from_earlier_detector_weights(tmp_path, capsys):
    """--start-from continues from a tuned detector: the nets not tuned keep its weights."""
    from training.tune_detector import main

    scenes = scenes_copy(tmp_path / "scenes")
    start = detector_checkpoint.DEFAULT_DETECTOR
    out = tmp_path / "onet.pt"
    flags = ["--scenes", str(scenes), "--out", str(out), "--quiet", "--epochs", "1"]
    flags += ["--work-dir", str(tmp_path / "work")]
    assert main(flags + ["--start-from", str(start), "--stages", "onet"]) == 0
    before, after = detector_checkpoint.read(start), detector_checkpoint.read(out)
    for net in ("pnet", "rnet"):
        assert all(torch.equal(after[net][k], v) for k, v in before[net].items()), net
    record = after["meta"]["start_from"]
    assert record["file"] == str(start) and record["command"] == before["meta"]["command"]
    assert len(record["sha1"]) == 40

    stock = MTCNN(keep_all=True, post_process=False)
    assert main(flags + ["--stages", "onet", "--out", str(tmp_path / "stock.pt")]) == 0
    fresh = detector_checkpoint.read(tmp_path / "stock.pt")
    assert fresh["meta"]["start_from"] == "stock"
    assert all(torch.equal(fresh["rnet"][k], v) for k, v in stock.rnet.state_dict().items())
    # the tuned net itself starts from the file: with a vanishing step it stays there
    assert main(flags + ["--start-from", str(start), "--lr", "1e-12", "--overwrite"]) == 0
    still = detector_checkpoint.read(out)
    for net in ("pnet", "rnet", "onet"):
        assert all(torch.allclose(still[net][k], v, atol=1e-6) for k, v in before[net].items())
        assert not all(torch.allclose(still[net][k], v) for k, v in fresh[net].items()), net

    (tmp_path / "notes.pt").write_text("not weights")
    capsys.readouterr()
    assert main(flags + ["--start-from", str(tmp_path / "notes.pt"), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.pt is not a readable weights file" in err[0], err


def test_an_interrupted_tuning_resumes_after_its_last_finished_stage(
    tmp_path, capsys, caplog, monkeypatch
):
    """A stop during O-Net keeps the tuned R-Net; --resume tunes O-Net alone and ends with
    the weights of a run never stopped. A fresh run without --resume starts anew."""
    from training import tune_detector

    caplog.set_level("INFO", logger="training.tune_detector")
    scenes = scenes_copy(tmp_path / "scenes")
    work = tmp_path / "work"
    flags = ["--scenes", str(scenes), "--work-dir", str(work), "--quiet", "--epochs", "1"]
    flags += ["--stages", "rnet", "onet"]
    assert tune_detector.main(flags + ["--out", str(tmp_path / "whole.pt")]) == 0
    assert not (work / "detector-state").exists()  # a finished run keeps no state
    whole = detector_checkpoint.read(tmp_path / "whole.pt")

    tuned, stop = [], {"onet": True}
    real_tune_stage = tune_detector.tune_stage

    def stopped_in_onet(net, stage, *rest):
        tuned.append(stage)
        if stop.pop(stage, False):
            raise KeyboardInterrupt
        return real_tune_stage(net, stage, *rest)

    monkeypatch.setattr(tune_detector, "tune_stage", stopped_in_onet)
    out = tmp_path / "resumed.pt"
    capsys.readouterr()
    assert tune_detector.main(flags + ["--out", str(out)]) == 130
    (said,) = capsys.readouterr().err.strip().splitlines()
    (state,) = (work / "detector-state").iterdir()
    assert f"rnet finished and kept in {state} (--resume goes on after it)" in caplog.text
    assert said == (
        f"training.tune_detector: interrupted; rnet finished, kept in {state}: run the same "
        "command with --resume to go on from there"
    )
    assert not out.exists()
    stop["onet"] = True  # a resumed run stopped again still keeps what it read back
    assert tune_detector.main(flags + ["--out", str(out), "--resume"]) == 130
    assert capsys.readouterr().err.strip() == said and state.exists()

    assert tune_detector.main(flags + ["--out", str(out), "--resume"]) == 0
    assert tuned == ["rnet", "onet", "onet", "onet"]  # R-Net read back, not tuned again
    resumed = detector_checkpoint.read(out)
    assert resumed["meta"]["resumed_stages"] == ["rnet"]
    assert resumed["meta"]["stages"] == whole["meta"]["stages"]
    for net in ("pnet", "rnet", "onet"):
        for name, value in whole[net].items():
            assert torch.equal(resumed[net][name], value), (net, name)
    assert not state.exists()

    tuned.clear()  # a run without --resume starts anew, and says what it replaces
    stop["onet"] = True
    again = flags + ["--out", str(out), "--overwrite", "--lr", "1e-3"]
    assert tune_detector.main(again) == 130
    (state,) = (work / "detector-state").iterdir()
    caplog.clear()
    assert tune_detector.main(again) == 0
    assert tuned == ["rnet", "onet", "rnet", "onet"]
    assert f"an interrupted run with these settings is kept in {state}" in caplog.text
    assert not state.exists()


def test_a_kept_tuning_state_that_cannot_be_used_is_said_and_passed_over(
    tmp_path, stock, caplog, capsys
):
    from training import detector_state
    from training.tune_detector import main

    path = tmp_path / "state.pt"
    detector_checkpoint.save(path, stock, {"finished_stages": ["rnet"]})  # a list: no record
    mtcnn = MTCNN(keep_all=True, post_process=False)
    before = {k: v.clone() for k, v in mtcnn.state_dict().items()}
    assert detector_state.take_back(path, mtcnn, ["rnet", "onet"]) == {}
    assert "does not record which of rnet, onet it finished" in caplog.text
    assert all(torch.equal(v, before[k]) for k, v in mtcnn.state_dict().items())
    detector_checkpoint.save(path, stock, {"finished_stages": {"pnet": {}}})  # not this run's
    assert detector_state.take_back(path, mtcnn, ["rnet", "onet"]) == {}
    assert detector_state.take_back(path, mtcnn, ["pnet", "rnet"]) == {"pnet": {}}

    afile = tmp_path / "afile"
    afile.write_text("the user's notes")
    scenes = scenes_copy(tmp_path / "scenes")
    argv = ["--scenes", str(scenes), "--out", str(tmp_path / "d.pt"), "--work-dir", str(afile)]
    assert main(argv + ["--quiet"]) == 2  # before any tuning
    (said,) = capsys.readouterr().err.strip().splitlines()
    assert said.startswith("training.tune_detector: error: ") and "afile" in said
    assert afile.read_text() == "the user's notes" and not (tmp_path / "d.pt").exists()
