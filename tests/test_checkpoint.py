"""The checkpoint format: round trip, metadata, and clear refusals of wrong files."""

import pytest
import torch

from models import checkpoint
from models import student as student_net
from models.checkpoint import CheckpointError, ModelMeta

CLASSES_3 = ("mask", "no_mask", "not_face")


def test_committed_weights_load_with_metadata():
    for arch in ("teacher", "student"):
        model, meta = checkpoint.load(checkpoint.default_weights(arch), arch)
        assert meta.arch == arch
        assert meta.class_names[:2] == ("mask", "no_mask")
        assert set(meta.class_names[2:]) <= {"not_face"}
        assert meta.input_size > 0 and len(meta.mean) == 3
        assert "training.distill" in meta.command
        assert meta.scores["test"]["accuracy"] > 0.9
        assert not model.training


def test_student_is_at_most_3_percent_of_teacher():
    teacher = checkpoint.count_parameters(checkpoint.build("teacher"))
    student = checkpoint.count_parameters(checkpoint.build("student"))
    assert student <= 0.03 * teacher


def test_round_trip_keeps_weights(tmp_path):
    model = checkpoint.build("student")
    path = tmp_path / "s.pt"
    checkpoint.save(path, model, ModelMeta(arch="student", input_size=48))
    loaded, meta = checkpoint.load(path, "student")
    assert meta.input_size == 48
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_the_students_width_is_kept_and_older_files_load_at_the_legacy_width(tmp_path):
    wide = checkpoint.build("student", 3, 24)
    path = tmp_path / "wide.pt"
    # a stale width in the metadata given is not what gets recorded: the model's own is
    checkpoint.save(path, wide, ModelMeta(arch="student", class_names=CLASSES_3, width=8))
    loaded, meta = checkpoint.load(path, "student")
    assert meta.width == 24 and loaded.features[0][0].out_channels == 24
    assert checkpoint.count_parameters(loaded) == checkpoint.count_parameters(wide)
    # a file written before widths were recorded: its student has the legacy width
    legacy = checkpoint.build("student", 3, student_net.LEGACY_WIDTH)
    payload = {
        "format": checkpoint.FORMAT,
        "version": 1,
        "meta": {"arch": "student", "class_names": list(CLASSES_3)},
        "state_dict": legacy.state_dict(),
    }
    torch.save(payload, path)
    loaded, meta = checkpoint.load(path, "student")
    assert meta.width == student_net.LEGACY_WIDTH == 16
    assert loaded.features[0][0].out_channels == 16


@pytest.mark.parametrize(
    "arch, width, message",
    [
        ("student", 0, "impossible student width 0"),
        ("student", "32", "impossible student width '32'"),
        ("teacher", 32, "gives the teacher a width; only the student has one"),
    ],
)
def test_an_impossible_width_is_refused(tmp_path, arch, width, message):
    path = tmp_path / "w.pt"
    meta = {"arch": arch, "width": width}
    torch.save({"format": checkpoint.FORMAT, "version": 1, "meta": meta, "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


def test_wrong_architecture_is_refused(tmp_path):
    path = tmp_path / "s.pt"
    checkpoint.save(path, checkpoint.build("student"), ModelMeta(arch="student"))
    with pytest.raises(CheckpointError, match="holds a student model, not a teacher"):
        checkpoint.load(path, "teacher")


def test_weights_of_another_shape_are_refused(tmp_path):
    path = tmp_path / "bad.pt"
    payload = {
        "format": checkpoint.FORMAT,
        "version": 1,
        "meta": {"arch": "student"},
        "state_dict": {"features.0.0.weight": torch.zeros(3, 3, 3, 3)},
    }
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not fit the student architecture"):
        checkpoint.load(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_missing_truncated_or_garbage_files(tmp_path, content):
    path = tmp_path / "w.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path)):
        checkpoint.load(path)


@pytest.mark.parametrize("kept", [1_000, 5_000, 30_000, 70_000, 0.5])
def test_truncated_real_checkpoint(tmp_path, kept):
    # Cut between about 5 and 70 KB, torch fails with an OSError (EINVAL) of its own: that
    # is still a damaged file, not one the user lacks the right to read.
    data = checkpoint.default_weights("student").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: int(len(data) * kept) if kept < 1 else kept])
    with pytest.raises(CheckpointError, match="not a readable weights file") as refused:
        checkpoint.load(path)
    assert "Invalid argument" not in str(refused.value)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(checkpoint.build("student").state_dict(), path)
    with pytest.raises(CheckpointError, match="is not a MaskWatch checkpoint"):
        checkpoint.load(path)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "obj": ModelMeta(arch="student")}, path)
    with pytest.raises(CheckpointError):
        checkpoint.load(path)


def test_folding_batchnorm_keeps_the_answers():
    from models.fuse import fold_batchnorm

    for arch in ("student", "teacher"):
        model, meta = checkpoint.load(checkpoint.default_weights(arch), arch)
        folded = fold_batchnorm(model)
        x = torch.randn(4, 3, meta.input_size, meta.input_size)
        with torch.no_grad():
            assert torch.allclose(model(x), folded(x), atol=1e-4)
        bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        left = sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert left < bn
        assert model.training is False and any(
            isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()
        )  # original untouched


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"format": checkpoint.FORMAT, "version": 1}, "damaged"),
        (
            {
                "format": checkpoint.FORMAT,
                "version": 1,
                "meta": {"arch": "student", "input_size": 0},
                "state_dict": {},
            },
            "impossible input size",
        ),
        (
            {
                "format": checkpoint.FORMAT,
                "version": 1,
                "meta": {"arch": "student", "bogus": 1, "class_names": ["x"]},
                "state_dict": {},
            },
            "unusable metadata",
        ),
    ],
)
def test_damaged_metadata_is_refused(tmp_path, payload, message):
    path = tmp_path / "w.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


def test_text_file_as_weights_gets_no_unsafe_advice(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n" * 20)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    assert "weights_only" not in str(info.value) and str(path) in str(info.value)


def student_payload(**meta) -> dict:
    """A valid student checkpoint as a plain dict, with ``meta`` fields replaced."""
    return {
        "format": checkpoint.FORMAT,
        "version": checkpoint.VERSION,
        "meta": {"arch": "student", **meta},
        "state_dict": checkpoint.build("student").state_dict(),
    }


def refusal(path, payload) -> str:
    """Save ``payload`` at ``path`` and return the one-line reason ``load`` refuses it with."""
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and "\x1b" not in message
    return message


@pytest.mark.parametrize(
    "meta, field",
    [
        ({"class_names": ["cat", "dog", "bird"]}, "class_names"),
        ({"class_names": [0, 1]}, "class_names"),
        ({"class_names": ["no_mask", "mask"]}, "class_names"),
        ({"class_names": "mask"}, "class_names"),
        ({"mean": "abc"}, "mean"),
        ({"mean": ["a", "b", "c"]}, "mean"),
        ({"mean": [0.5, float("nan"), 0.5]}, "mean"),
        ({"std": [0.2, 0.0, 0.2]}, "std"),
        ({"std": [0.2, -0.1, 0.2]}, "std"),
        ({"std": [0.2, float("inf"), 0.2]}, "std"),
        ({"arch": "resnet"}, "arch"),
        ({"scores": [1, 2]}, "scores"),
    ],
)
def test_metadata_outside_the_events_format_is_refused(tmp_path, meta, field):
    message = refusal(tmp_path / "w.pt", student_payload(**meta))
    assert f"unusable metadata: '{field}' must be" in message


def test_both_product_class_lists_load(tmp_path):
    for names in (["mask", "no_mask"], ["mask", "no_mask", "not_face"]):
        path = tmp_path / f"{len(names)}.pt"
        model = checkpoint.build("student", len(names))
        checkpoint.save(path, model, ModelMeta(arch="student", class_names=tuple(names)))
        assert checkpoint.load(path)[1].class_names == tuple(names)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("key", ["classifier.weight", "features.0.1.running_var"])
def test_weights_that_are_not_finite_are_refused(tmp_path, bad, key):
    payload = student_payload()
    payload["state_dict"][key].view(-1)[0] = bad
    message = refusal(tmp_path / "w.pt", payload)
    assert "not finite" in message and key in message


@pytest.mark.parametrize("weights", [[torch.zeros(3)], {"classifier.weight": [0.0, 1.0]}])
def test_weights_that_are_not_a_table_of_tensors_are_refused(tmp_path, weights):
    payload = student_payload()
    payload["state_dict"] = weights
    assert "damaged MaskWatch checkpoint" in refusal(tmp_path / "w.pt", payload)


@pytest.mark.parametrize(
    "version, message",
    [
        (99, "made by a newer MaskWatch (format version 99)"),
        (0, "unknown format version 0"),
        ("1", "no format version"),
        (None, "no format version"),
    ],
)
def test_unknown_format_version_is_refused(tmp_path, version, message):
    payload = student_payload()
    payload["version"] = version
    assert message in refusal(tmp_path / "w.pt", payload)


def pickled_module(path):
    torch.save(checkpoint.build("student"), path)


def truncated(path):
    data = checkpoint.default_weights("student").read_bytes()
    path.write_bytes(data[: len(data) // 2])


def text(path):
    path.write_text("these are not weights\n" * 20)


@pytest.mark.parametrize(
    "write, message",
    [
        (pickled_module, "holds Python objects, not plain weights; refusing to load it"),
        (truncated, "is not a readable weights file (damaged, truncated, or not a"),
        (text, "is not a readable weights file (damaged, truncated, or not a"),
    ],
)
def test_unreadable_files_get_one_plain_line(tmp_path, write, message):
    path = tmp_path / "w.pt"
    write(path)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    reason = str(info.value)
    assert reason.startswith(str(path)) and message in reason
    assert "\n" not in reason and "\x1b" not in reason and "weights_only" not in reason


def test_folder_is_not_a_weights_file(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder, not a weights file"):
        checkpoint.load(tmp_path)


def test_classifier_never_gives_a_score_that_is_not_a_number(tmp_path):
    from app.classifier import FaceClassifier

    model = checkpoint.build("student")
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.fill_(1e20)  # finite, but the activations overflow to inf and NaN
    path = tmp_path / "huge.pt"
    checkpoint.save(path, model, ModelMeta(arch="student"))
    with pytest.raises(CheckpointError, match=f"{path} gives scores that are not numbers"):
        FaceClassifier.from_file(path, "student", torch.device("cpu"))

    classifier = FaceClassifier(*checkpoint.load(path), torch.device("cpu"))
    crop = torch.randint(0, 255, (40, 40, 3), dtype=torch.uint8).numpy()
    with pytest.raises(CheckpointError, match="not numbers"):
        classifier.classify([crop])


def test_app_falls_back_when_the_weights_are_not_a_table(tmp_path):
    from app.config import PipelineConfig
    from app.model_loader import build_pipeline

    path = tmp_path / "list.pt"
    payload = student_payload()
    payload["state_dict"] = list(payload["state_dict"].values())
    torch.save(payload, path)
    report = build_pipeline(PipelineConfig(model="student", device="cpu"), {"student": path})
    assert report.pipeline.active == "teacher"
    assert str(path) in report.unavailable["student"]


class RunsCode:
    """Unpickling this would call os.getcwd: the pickle a malicious weights file holds."""

    def __reduce__(self):
        import os

        return (os.getcwd, ())


def with_student_weights(path, change):
    payload = torch.load(checkpoint.default_weights("student"), weights_only=True)
    payload["state_dict"] = {k: change(v) for k, v in payload["state_dict"].items()}
    torch.save(payload, path)


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: torch.save({"x": RunsCode()}, p), "holds Python objects, not plain weights"),
        (
            lambda p: torch.jit.save(torch.jit.script(checkpoint.build("student").eval()), p),
            "is a TorchScript export (training.export), not a weights file",
        ),
        (
            lambda p: with_student_weights(p, lambda v: v.long() if v.is_floating_point() else v),
            "holds torch.int64 numbers, not real ones",
        ),
        (
            lambda p: with_student_weights(
                p, lambda v: v.to(torch.complex64) if v.is_floating_point() else v
            ),
            "holds torch.complex64 numbers, not real ones",
        ),
    ],
    ids=["code", "torchscript", "integers", "complex"],
)
def test_things_that_are_not_weights_are_named(tmp_path, write, message, recwarn):
    path = tmp_path / "w.pt"
    write(path)
    recwarn.clear()
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path, "student")
    reason = str(info.value)
    assert str(path) in reason and message in reason and "\n" not in reason
    assert not [w for w in recwarn if "torch" in str(w.filename)]  # no torch advice leaks
    (tmp_path / "w.onnx").write_bytes(b"\x08\x07onnx")
    with pytest.raises(CheckpointError, match="is an ONNX export; the app loads .pt weights"):
        checkpoint.load(tmp_path / "w.onnx")


def test_an_onnx_export_under_another_name_is_told_by_its_contents(tmp_path):
    """A renamed export is named for what it is, and no output replaces it."""
    from app.atomic import OutputExistsError, check_writable
    from models.file_kind import ONNX, WEIGHTS, model_kind
    from training.export import export

    model, meta = checkpoint.load(checkpoint.default_weights("student"), "student")
    onnx_path = tmp_path / "student.onnx"
    export(model, meta, onnx_path, tmp_path / "student.torchscript.pt")
    renamed = onnx_path.rename(tmp_path / "weights.pt")
    assert model_kind(renamed) == ONNX
    with pytest.raises(CheckpointError, match="weights.pt is an ONNX export; the app loads"):
        checkpoint.load(renamed, "student")
    with pytest.raises(OutputExistsError, match="holds an ONNX model, which a report"):
        check_writable(renamed, overwrite=True)
    for other in (
        b'{"frame": 0}\n',
        b"\x08\x08 not protobuf",
        b"\xff\xd8\xff\xe0 jpeg",
        b"",
        b"\x08\x07\x12hello, notes that open as ONNX does",  # but do not parse as a model
    ):
        (tmp_path / "other").write_bytes(other)
        assert model_kind(tmp_path / "other") is None
    # weights named .onnx are weights: told by content first, so export never replaces them
    named = tmp_path / "student.onnx"
    named.write_bytes(checkpoint.default_weights("student").read_bytes())
    assert model_kind(named) == WEIGHTS


def test_detector_weights_given_as_a_classifier_are_named_as_such():
    detector = checkpoint.MODEL_DIR / "detector.pt"
    with pytest.raises(CheckpointError, match="holds face detector weights .* not a classifier"):
        checkpoint.load(detector)
