"""Export a classifier as ONNX and TorchScript: ``python -m training.export``.

Both files are checked against the PyTorch model on real face crops (the test fixtures by
default, cropped by the app's detector): same labels, probabilities within a tolerance.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.atomic import atomic_path, check_writable
from app.classifier import crops_to_tensor
from app.config import CropConfig, DetectorConfig
from app.detector import FaceDetector
from app.images import ImageError, read_rgb
from models import checkpoint
from models.checkpoint import CheckpointError
from training.prepare import face_crop_for_image

log = logging.getLogger(__name__)

DEFAULT_IMAGES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TOLERANCE = 1e-4


@dataclass
class ExportCheck:
    crops: int
    onnx_max_diff: float
    torchscript_max_diff: float
    labels_agree: bool

    @property
    def ok(self) -> bool:
        return (
            self.labels_agree
            and self.onnx_max_diff <= TOLERANCE
            and self.torchscript_max_diff <= TOLERANCE
        )


def fixture_crops(folder: Path, limit: int = 32) -> list[np.ndarray]:
    """Face crops of the images in ``folder``, made as the training data is made."""
    detector = FaceDetector(DetectorConfig())
    crops = []
    for path in sorted(folder.iterdir()):
        if len(crops) >= limit:
            break
        try:
            rgb = read_rgb(path)
        except ImageError:
            continue
        crops.append(face_crop_for_image(rgb, detector, CropConfig())[0])
    if not crops:
        raise ValueError(f"no readable images in {folder} to check the export with")
    return crops


def export(model: torch.nn.Module, input_size: int, onnx_path: Path, script_path: Path) -> None:
    """Write both formats atomically; the batch dimension stays dynamic."""
    model = model.eval().float()
    example = torch.zeros(1, 3, input_size, input_size)
    with atomic_path(onnx_path) as tmp:
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            dynamo=False,
            input_names=["crops"],
            output_names=["logits"],
            opset_version=17,
            dynamic_axes={"crops": {0: "batch"}, "logits": {0: "batch"}},
        )
    with atomic_path(script_path) as tmp, torch.no_grad():
        torch.jit.trace(model, example).save(str(tmp))


def check(
    model: torch.nn.Module, batch: torch.Tensor, onnx_path: Path, script_path: Path
) -> ExportCheck:
    import onnxruntime as ort

    with torch.no_grad():
        reference = torch.softmax(model.eval()(batch), 1).numpy()
        scripted = torch.jit.load(str(script_path)).eval()
        script_probs = torch.softmax(scripted(batch), 1).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"crops": batch.numpy()})[0]
    onnx_probs = torch.softmax(torch.from_numpy(onnx_logits), 1).numpy()
    agree = bool(
        (reference.argmax(1) == onnx_probs.argmax(1)).all()
        and (reference.argmax(1) == script_probs.argmax(1)).all()
    )
    return ExportCheck(
        len(batch),
        float(np.abs(reference - onnx_probs).max()),
        float(np.abs(reference - script_probs).max()),
        agree,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.export", description=__doc__)
    p.add_argument("--model", choices=["student", "teacher"], default="student")
    p.add_argument("--weights", type=Path, help="checkpoint (default: the committed one)")
    p.add_argument("--out", type=Path, default=Path("export"), help="folder (default export/)")
    p.add_argument(
        "--images",
        type=Path,
        default=DEFAULT_IMAGES,
        help="images whose face crops check the export (default tests/fixtures)",
    )
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    onnx_path = args.out / f"{args.model}.onnx"
    script_path = args.out / f"{args.model}.torchscript.pt"
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for path in (onnx_path, script_path):
            check_writable(path, args.overwrite)
        model, meta = checkpoint.load(
            args.weights or checkpoint.default_weights(args.model), args.model
        )
        batch = crops_to_tensor(fixture_crops(args.images), meta)
        export(model, meta.input_size, onnx_path, script_path)
        result = check(model, batch, onnx_path, script_path)
    except (CheckpointError, ValueError, OSError) as exc:
        print(f"training.export: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {onnx_path} and {script_path}")
    print(
        f"checked on {result.crops} crops: labels agree {result.labels_agree}, max "
        f"probability difference ONNX {result.onnx_max_diff:.2e}, "
        f"TorchScript {result.torchscript_max_diff:.2e}"
    )
    if not result.ok:
        onnx_path.unlink(missing_ok=True)
        script_path.unlink(missing_ok=True)
        print(
            "training.export: error: the exported models disagree with PyTorch; removed them",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
