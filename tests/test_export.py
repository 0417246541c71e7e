"""ONNX and TorchScript exports answer as the PyTorch student does on the fixture faces."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import FIXTURES

from app.classifier import FaceClassifier, crops_to_tensor
from models import checkpoint
from training.export import (
    ExportMismatchError,
    check,
    export,
    export_checked,
    fixture_crops,
)

ROOT = Path(__file__).resolve().parents[1]


def test_exports_match_pytorch_on_fixture_crops(tmp_path):
    model, meta = checkpoint.load(checkpoint.default_weights("student"), "student")
    batch = crops_to_tensor(fixture_crops(FIXTURES), meta)
    assert len(batch) >= 4
    onnx_path, script_path = tmp_path / "s.onnx", tmp_path / "s.pt"
    export(model, meta, onnx_path, script_path)
    result = check(model, batch, onnx_path, script_path)
    assert result.ok and result.labels_agree
    assert result.onnx_max_diff < 1e-4 and result.torchscript_max_diff < 1e-4
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"crops": batch[:3].numpy()})[0]  # the batch size is dynamic
    assert logits.shape == (3, len(meta.class_names))
    with torch.no_grad():
        assert np.allclose(logits, model(batch[:3]).numpy(), atol=1e-4)


def test_both_files_say_what_input_they_take_and_which_logit_is_which(tmp_path):
    """A program that runs the export reads the crop size, normalisation and class order
    from the file, and following them gives the app's own answers."""
    import onnx

    model, meta = checkpoint.load(checkpoint.default_weights("student"), "student")
    onnx_path, script_path = tmp_path / "s.onnx", tmp_path / "s.pt"
    export(model, meta, onnx_path, script_path)
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    extra = {"maskwatch.json": ""}
    with warnings.catch_warnings():  # torch.jit is deprecated (see training.export's note)
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.load(str(script_path), _extra_files=extra)
    assert json.loads(extra["maskwatch.json"]) == props
    assert props["maskwatch.class_names"] == "mask,no_mask,not_face"
    assert props["maskwatch.input_size"] == "64" and "RGB" in props["maskwatch.input"]
    assert "area averaging when shrinking" in props["maskwatch.crop"]  # the filter: INTER_AREA

    size = int(props["maskwatch.input_size"])
    mean = np.array([float(v) for v in props["maskwatch.mean"].split(",")], np.float32)
    std = np.array([float(v) for v in props["maskwatch.std"].split(",")], np.float32)
    crops = fixture_crops(FIXTURES, limit=6)
    resized = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops])
    batch = ((resized.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"crops": np.ascontiguousarray(batch)})[0]
    labels = [props["maskwatch.class_names"].split(",")[i] for i in logits.argmax(1)]
    app = FaceClassifier(model, meta, torch.device("cpu")).classify(crops)
    assert labels == [p.label for p in app]


def test_export_crops_photos_as_training_does(tmp_path):
    """The tuned detector boxes a spectacle lens on this photo; training crops stock MTCNN's
    face around it, and so must the export's check."""
    (tmp_path / "photos").mkdir()
    shutil.copy(FIXTURES / "masked_with_glasses.jpg", tmp_path / "photos" / "glasses.jpg")
    [crop] = fixture_crops(tmp_path / "photos")
    assert crop.shape == (203, 173, 3)  # the whole face, clipped to the photo


def test_export_command_and_overwrite_guard(tmp_path):
    cmd = [sys.executable, "-m", "training.export", "--out", str(tmp_path)]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr
    assert "labels agree True" in first.stdout
    assert "Warning" not in first.stderr, first.stderr  # torch's deprecation notices stay quiet
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.onnx", "student.torchscript.pt"]
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert again.returncode == 2 and "already exists" in again.stderr

    # An export killed outright leaves its partial files (a whole ONNX model, a cut-off
    # TorchScript one); as models named for what they were meant to be, the next export
    # into that folder removes them.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    onnx_left = tmp_path / f".student.partial-{gone.pid}.onnx"
    script_left = tmp_path / f".student.torchscript.partial-{gone.pid}.pt"
    onnx_left.write_bytes((tmp_path / "student.onnx").read_bytes())
    script_left.write_bytes((tmp_path / "student.torchscript.pt").read_bytes()[:100_000])
    for path in (onnx_left, script_left):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    third = subprocess.run(
        cmd + ["--overwrite"], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert third.returncode == 0, third.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.onnx", "student.torchscript.pt"]
    assert f"removed {onnx_left}" in third.stderr and f"removed {script_left}" in third.stderr


def test_a_stop_after_both_files_are_written_says_they_were(tmp_path, monkeypatch, capsys):
    """SIGTERM while the summary is printed: the files are complete and kept, and the one
    line says so instead of ending silently."""
    from app.stop_signals import Stopped
    from training.export import main

    class StopOnSummary:
        def write(self, text: str) -> int:
            if text.startswith("wrote "):
                raise Stopped(signal.SIGTERM)
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", StopOnSummary())
    assert main(["--out", str(tmp_path)]) == 128 + signal.SIGTERM
    onnx, script = tmp_path / "student.onnx", tmp_path / "student.torchscript.pt"
    assert capsys.readouterr().err.strip().splitlines() == [
        f"training.export: terminated (SIGTERM) after writing {onnx} and {script}"
    ]
    assert ort.InferenceSession(str(onnx)) and zipfile.is_zipfile(script)


def overflowing_student(path: Path) -> Path:
    """Save the committed student with a last layer so large its logits overflow to inf."""
    model, meta = checkpoint.load(checkpoint.default_weights("student"), "student")
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # every logit past float32's largest number, whatever the crop
        last.weight.fill_(1e38)
        last.bias.fill_(1e38)
    checkpoint.save(path, model, meta)
    return path


def test_nan_probabilities_are_a_disagreement(tmp_path):
    model, meta = checkpoint.load(overflowing_student(tmp_path / "bad.pt"), "student")
    batch = crops_to_tensor(fixture_crops(FIXTURES, limit=4), meta)
    onnx_path, script_path = tmp_path / "s.onnx", tmp_path / "s.pt"
    export(model, meta, onnx_path, script_path)
    result = check(model, batch, onnx_path, script_path)
    assert np.isnan(result.onnx_max_diff)
    assert not result.labels_agree and not result.ok


def test_weights_that_give_no_numbers_are_named_before_any_export(tmp_path, capsys):
    from training.export import main

    weights = overflowing_student(tmp_path / "bad.pt")
    out = tmp_path / "export"
    assert main(["--weights", str(weights), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"training.export: error: {weights} gives scores that are not numbers; "
        "its weights are unusable"
    ]
    assert not out.exists()


def test_failed_export_keeps_the_earlier_one_and_makes_no_folder(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    model, meta = checkpoint.load(checkpoint.default_weights("student"), "student")
    export(model, meta, out / "student.onnx", out / "student.torchscript.pt")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = overflowing_student(tmp_path / "bad.pt")
    # The command refuses such weights before exporting (see below); an export that fails
    # its own check, whatever the cause, must leave the earlier files as they were too.
    model, meta = checkpoint.load(bad, "student")
    batch = crops_to_tensor(fixture_crops(FIXTURES, limit=4), meta)
    with pytest.raises(ExportMismatchError, match="disagree with PyTorch.*left as it was"):
        export_checked(model, batch, meta, out / "student.onnx", out / "student.torchscript.pt")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    cmd = [sys.executable, "-m", "training.export", "--weights", str(bad)]
    options = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 180}
    run = subprocess.run([*cmd, "--out", str(out), "--overwrite"], check=False, **options)
    assert run.returncode == 2, run.stderr
    assert "gives scores that are not numbers" in run.stderr.strip().splitlines()[-1]
    assert "Traceback" not in run.stderr and "wrote" not in run.stdout
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    fresh = tmp_path / "new" / "export"
    run = subprocess.run([*cmd, "--out", str(fresh)], check=False, **options)
    assert run.returncode == 2, run.stderr
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "signum, said",
    [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated (SIGTERM)")],
)
def test_ctrl_c_leaves_nothing_and_no_traceback(tmp_path, signum, said):
    """Ctrl-C comes while the export is surely under way (models loaded, the detector
    cropping faces): the command is started with its image reader held up, after it has
    said so in a file, until the signal comes."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(FIXTURES / "mask_1.jpg", images / "a.jpg")
    reading = tmp_path / "reading"
    out = tmp_path / "new" / "export"
    argv = ["--out", str(out), "--images", str(images)]
    held_up = (
        "import sys, time; from pathlib import Path; import training.export as export; "
        "read = export.read_rgb; "
        f"export.read_rgb = lambda p: (Path({str(reading)!r}).touch(), time.sleep(120), "
        "read(p))[-1]; "
        f"sys.exit(export.main({argv!r}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", held_up],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # As a shell script's background job starts: Ctrl-C ignored, yet `kill -INT` works.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.monotonic() + 180
    while not reading.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reading.exists(), proc.communicate()[1]
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1] == f"training.export: {said}; nothing was written"
    assert "Traceback" not in err and not (tmp_path / "new").exists()


def test_export_never_writes_over_its_own_weights(tmp_path, capsys):
    from training.export import main

    weights = tmp_path / "student.torchscript.pt"
    weights.write_bytes((ROOT / "models" / "student.pt").read_bytes())
    argv = ["--weights", str(weights), "--out", str(tmp_path), "--overwrite"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is the --weights file {weights}" in err[0]
    assert weights.read_bytes() == (ROOT / "models" / "student.pt").read_bytes()


def test_a_disk_that_fills_during_the_export_is_status_1_and_names_the_files(
    tmp_path, monkeypatch, capsys
):
    import errno

    import training.export as export_module

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "export_checked", full_disk)
    out = tmp_path / "new" / "export"
    assert export_module.main(["--out", str(out)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"training.export: error: writing {out / 'student.onnx'} and ")
    assert line.endswith("failed (No space left on device); nothing was written")
    assert not (tmp_path / "new").exists()


def test_check_images_may_be_a_class_folder_set_but_not_a_file(tmp_path, capsys):
    from training.export import main

    root = tmp_path / "faces"
    for folder, name in (("with_mask", "mask_1.jpg"), ("without_mask", "no_mask_1.jpg")):
        (root / folder).mkdir(parents=True)
        shutil.copy(FIXTURES / name, root / folder / name)
    assert main(["--images", str(root / "with_mask" / "mask_1.jpg"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--images" in err and "mask_1.jpg is not a folder of images" in err
    assert main(["--images", str(root), "--out", str(tmp_path / "export")]) == 0
    assert "checked on 2 crops: labels agree True" in capsys.readouterr().out


def test_an_empty_out_is_refused_not_taken_as_the_current_folder(tmp_path, capsys, monkeypatch):
    from training.export import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(["--out", ""])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "training.export: error: argument --out: is empty; name a folder (--help lists the flags)"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_image_that_does_not_decode_is_named_and_notes_are_passed_over(tmp_path, caplog):
    folder = tmp_path / "check"
    folder.mkdir()
    shutil.copy(FIXTURES / "mask_1.jpg", folder / "mask_1.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    (folder / "SOURCES.md").write_text("where the photos came from\n")
    os.mkfifo(folder / "pipe.jpg")  # reading it would wait forever
    (folder / "deeper" / "still").mkdir(parents=True)
    shutil.copy(FIXTURES / "no_mask_1.jpg", folder / "deeper" / "still" / "no_mask_1.jpg")
    (folder / "deeper" / "loop").symlink_to(folder)  # read once, not again through the link
    with caplog.at_level("WARNING"):
        crops = fixture_crops(folder)
    assert len(crops) == 2 and all(crop.ndim == 3 for crop in crops)
    said = sorted(r.getMessage() for r in caplog.records)  # the note is passed over
    assert len(said) == 3, said
    assert "broken.jpg" in said[0] and said[0].endswith("; skipped")
    assert "loop: it leads to" in said[1]  # named once, read once
    assert "pipe.jpg: not a regular file" in said[2]


def test_an_export_replaces_only_an_earlier_export(tmp_path, capsys):
    """--overwrite replaces the earlier ONNX and TorchScript files, never weights that
    happen to sit under the export's name."""
    from training.export import main

    out = tmp_path / "export"
    assert main(["--out", str(out)]) == 0
    assert main(["--out", str(out), "--overwrite"]) == 0  # an earlier export: replaced
    capsys.readouterr()
    script = out / "student.torchscript.pt"
    shutil.copy(ROOT / "models" / "student.pt", script)
    assert main(["--out", str(out), "--overwrite"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"training.export: error: {script} holds PyTorch weights, which this output never "
        "replaces; write it elsewhere"
    )
    assert script.read_bytes() == (ROOT / "models" / "student.pt").read_bytes()
