"""Export a classifier as ONNX and TorchScript: ``python -m training.export``.

Both files are checked against the PyTorch model on real face crops (the test fixtures by
default, cropped by the app's detector): same labels, probabilities within a tolerance.
They are written under temporary names and take their final names only once they pass, so
a failed export never replaces or removes an earlier good one.

Known shortcoming: torch 2.14 deprecates both paths used here, TorchScript (``torch.jit``)
and the TorchScript-based ONNX exporter. They are kept because every C++ and ONNX Runtime
deployment reads these files today, and the newer ONNX exporter needs ``onnxscript``, which
the app does not ship; their deprecation warnings are silenced so that the command prints
only its result. Moving to ``torch.export`` waits until the app can ship ``onnxscript``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.atomic import check_writable, describe_error
from app.classifier import crops_to_tensor
from app.config import CropConfig, DetectorConfig
from app.console import counted, error, exit_status, guard_streams, log_to_stderr, say, tell
from app.crops import RESIZE_RULE
from app.detector import FaceDetector
from app.flags import OneLineParser, input_path, output_folder
from app.images import ImageError, read_rgb
from app.stop_signals import stop_message, stoppable
from models import checkpoint
from models.checkpoint import CheckpointError, ModelMeta
from models.file_kind import ONNX, TORCHSCRIPT
from models.torch_files import save_script
from training.dataset_files import files_under, plainly_not_image
from training.outputs import OutputSet, refuse_inputs, refuse_inside
from training.prepare import face_crop_for_image, second_opinion_for

PROG = "training.export"  # how its one-line complaints begin
log = logging.getLogger(PROG)  # not "__main__" when run with -m

DEFAULT_IMAGES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TOLERANCE = 1e-4


class ExportMismatchError(ValueError):
    """The exported files do not answer as the PyTorch model does; they were not kept."""


@dataclass
class ExportCheck:
    crops: int
    onnx_max_diff: float
    torchscript_max_diff: float
    labels_agree: bool

    @property
    def ok(self) -> bool:
        """Labels agree and both differences are within ``TOLERANCE`` (a NaN one is not)."""
        return (
            self.labels_agree
            and self.onnx_max_diff <= TOLERANCE
            and self.torchscript_max_diff <= TOLERANCE
        )

    def summary(self) -> str:
        return (
            f"checked on {counted(self.crops, 'crop')}: labels agree "
            f"{self.labels_agree}, max "
            f"probability difference ONNX {self.onnx_max_diff:.2e}, "
            f"TorchScript {self.torchscript_max_diff:.2e}"
        )


def fixture_crops(folder: Path, limit: int = 32) -> list[np.ndarray]:
    """Face crops of the images in ``folder`` and its subfolders (a class-folder set, say),
    made as the training data is made; an image that does not decode is named and skipped."""
    if not folder.is_dir():
        raise ValueError(f"--images {folder} is not a folder of images")
    detector = FaceDetector(DetectorConfig())
    second_opinion = second_opinion_for(detector)
    crops = []
    for path in files_under(folder):
        if len(crops) >= limit:
            break
        if plainly_not_image(path):  # notes and annotations beside the photos
            continue
        try:
            rgb = read_rgb(path)
        except ImageError as exc:
            log.warning("%s; skipped", exc)
            continue
        crops.append(face_crop_for_image(rgb, detector, CropConfig(), second_opinion)[0])
    if not crops:
        raise ValueError(f"no readable images in {folder} to check the export with")
    return crops


def input_contract(meta: ModelMeta) -> dict[str, str]:
    """What a program that runs an exported file must feed it and read from it, stored in
    both files: the weights alone do not say the crop size, the normalisation, the channel
    order or which logit is which class."""
    crop = CropConfig()
    return {
        "maskwatch.model": meta.arch,
        "maskwatch.input": (
            f"crops: N x 3 x {meta.input_size} x {meta.input_size} float32, RGB channel order, "
            "pixel values / 255, then (value - mean) / std per channel"
        ),
        "maskwatch.input_size": str(meta.input_size),
        "maskwatch.mean": ",".join(f"{v:g}" for v in meta.mean),
        "maskwatch.std": ",".join(f"{v:g}" for v in meta.std),
        "maskwatch.crop": (
            f"the detector's face box widened by {crop.margin:g} of its side on each side"
            + (", made square" if crop.square else "")
            + f", clipped to the frame, resized to input_size by {RESIZE_RULE}"
        ),
        "maskwatch.output": "logits: N x classes; their softmax is each class's probability",
        "maskwatch.class_names": ",".join(meta.class_names),
    }


def export(model: torch.nn.Module, meta: ModelMeta, onnx_path: Path, script_path: Path) -> None:
    """Write both formats to exactly these paths, each carrying ``input_contract``; the batch
    dimension stays dynamic.

    Nothing here is atomic: ``export_checked`` passes temporary names and renames them.
    """
    model = model.eval().float()
    example = torch.zeros(1, 3, meta.input_size, meta.input_size)
    with _deprecations_silenced():
        _export(model, example, onnx_path, script_path, input_contract(meta))


@contextlib.contextmanager
def _deprecations_silenced():
    """Hide torch's deprecation notices for the export paths (see the module's note)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\..*")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\..*")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        yield


def _export(model, example, onnx_path: Path, script_path: Path, contract: dict) -> None:
    import onnx

    torch.onnx.export(
        model,
        (example,),
        str(onnx_path),
        dynamo=False,
        input_names=["crops"],
        output_names=["logits"],
        opset_version=17,
        dynamic_axes={"crops": {0: "batch"}, "logits": {0: "batch"}},
    )
    graph = onnx.load(str(onnx_path))
    onnx.helper.set_model_props(graph, contract)
    onnx.save(graph, str(onnx_path))
    with torch.no_grad():
        extra = {"maskwatch.json": json.dumps(contract, indent=1)}
        save_script(torch.jit.trace(model, example), script_path, extra)


def export_checked(
    model: torch.nn.Module,
    batch: torch.Tensor,
    meta: ModelMeta,
    onnx_path: Path,
    script_path: Path,
    overwrite: bool = True,
) -> ExportCheck:
    """Export under temporary names, check them, and only then rename them over the targets,
    both or neither (``overwrite`` False: never over a file that appeared meanwhile).

    Raises:
        ExportMismatchError: when the check fails; the targets are left as they were.
    """
    with OutputSet(overwrite) as outputs:
        onnx_tmp, script_tmp = outputs.path(onnx_path), outputs.path(script_path)
        export(model, meta, onnx_tmp, script_tmp)
        result = check(model, batch, onnx_tmp, script_tmp)
        if not result.ok:
            raise ExportMismatchError(
                f"the exported models disagree with PyTorch ({result.summary()}); "
                f"{onnx_path.parent} is left as it was"
            )
        outputs.commit()
    return result


def check(
    model: torch.nn.Module, batch: torch.Tensor, onnx_path: Path, script_path: Path
) -> ExportCheck:
    import onnxruntime as ort

    with torch.no_grad():
        reference = torch.softmax(model.eval()(batch), 1).numpy()
        with _deprecations_silenced():
            scripted = torch.jit.load(str(script_path)).eval()
        script_probs = torch.softmax(scripted(batch), 1).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"crops": batch.numpy()})[0]
    onnx_probs = torch.softmax(torch.from_numpy(onnx_logits), 1).numpy()
    # NaN probabilities have an argmax too; labels drawn from them agree with nothing.
    finite = all(np.isfinite(p).all() for p in (reference, onnx_probs, script_probs))
    agree = bool(
        finite
        and (reference.argmax(1) == onnx_probs.argmax(1)).all()
        and (reference.argmax(1) == script_probs.argmax(1)).all()
    )
    return ExportCheck(
        len(batch),
        float(np.abs(reference - onnx_probs).max()),
        float(np.abs(reference - script_probs).max()),
        agree,
    )


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run made, innermost first, if they are empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


@stoppable  # SIGTERM and SIGHUP stop it as Ctrl-C does
def main(argv: list[str] | None = None) -> int:
    guard_streams()
    p = OneLineParser(prog=f"python -m {PROG}", description=__doc__)
    p.add_argument("--model", choices=["student", "teacher"], default="student")
    p.add_argument("--weights", type=input_path, help="checkpoint (default: the committed one)")
    p.add_argument(
        "--out", type=output_folder, default=Path("export"), help="folder (default export/)"
    )
    p.add_argument(
        "--images",
        type=input_path,
        default=DEFAULT_IMAGES,
        help="images whose face crops check the export (default tests/fixtures)",
    )
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    log_to_stderr(logging.WARNING)
    onnx_path = args.out / f"{args.model}.onnx"
    script_path = args.out / f"{args.model}.torchscript.pt"
    new_folders = [f for f in (args.out, *args.out.parents) if not f.exists()]
    weights = args.weights or checkpoint.default_weights(args.model)
    checked = False  # once True, a failure is the disk's, not the user's
    try:
        if str(args.out) == "-":
            raise ValueError("--out -: name a folder for the exported models")
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file, not a folder")
        refuse_inside(args.out, "--out", {"--images": args.images})
        for path in (onnx_path, script_path):
            refuse_inputs(path, "--out", {"--weights": weights})
            if args.out.is_dir():
                check_writable(path, args.overwrite, may_replace=(ONNX, TORCHSCRIPT))
        model, meta = checkpoint.load(weights, args.model)
        batch = crops_to_tensor(fixture_crops(args.images), meta)
        with torch.no_grad():  # an export of such weights would only carry the fault along
            if not torch.isfinite(model.eval()(batch)).all():
                raise CheckpointError(
                    f"{weights} gives scores that are not numbers; its weights are unusable"
                )
        args.out.mkdir(parents=True, exist_ok=True)
        checked = True
        result = export_checked(model, batch, meta, onnx_path, script_path, args.overwrite)
    except OSError as exc:
        remove_empty(new_folders)
        if not checked:
            error(PROG, describe_error(exc))
            return 2
        error(
            PROG,
            f"writing {onnx_path} and {script_path} failed ({describe_error(exc)}); "
            "nothing was written",
        )
        return 1
    except (CheckpointError, ValueError) as exc:
        remove_empty(new_folders)
        error(PROG, describe_error(exc))
        return 2
    except KeyboardInterrupt as exc:  # export_checked has removed its temporary files
        remove_empty(new_folders)
        said, status = stop_message(exc)
        tell(PROG, f"{said}; nothing was written")
        return status
    try:
        say(f"wrote {onnx_path} and {script_path}")
        say(result.summary())
    except KeyboardInterrupt as exc:  # both files are complete by now: say so
        said, status = stop_message(exc)
        tell(PROG, f"{said} after writing {onnx_path} and {script_path}")
        return status
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main(), PROG))
