"""The checkpoint format: round trip, metadata, and clear refusals of wrong files."""

import pytest
import torch

from models import checkpoint
from models.checkpoint import CheckpointError, ModelMeta


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


def test_truncated_real_checkpoint(tmp_path):
    data = checkpoint.default_weights("student").read_bytes()
    path = tmp_path / "half.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable MaskWatch checkpoint"):
        checkpoint.load(path)


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
