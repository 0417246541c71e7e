"""One checkpoint format for teacher and student: weights plus the metadata to use them.

A checkpoint is a plain dict of tensors and built-in types so that it loads with
``torch.load(weights_only=True)``; nothing in it can run code when loaded.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from app.atomic import atomic_path
from models import CLASS_NAMES, MODEL_DIR
from models import student as student_net
from models.detector_checkpoint import FORMAT as DETECTOR_FORMAT
from models.safe_load import UnreadableWeights, check_dtypes, load_plain
from models.student import build_student
from models.teacher import build_teacher
from models.torch_files import save_torch

log = logging.getLogger(__name__)

FORMAT = "maskwatch-checkpoint"
VERSION = 1
BUILDERS = {"teacher": build_teacher, "student": build_student}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZES = (8, 1024)  # crop sides a checkpoint may give; larger crops would be no face crop
REJECT_CLASS = "not_face"  # the optional third class: a detector box that holds no face
# The only class lists the app and the events format know; anything else is refused.
KNOWN_CLASS_NAMES = (CLASS_NAMES, CLASS_NAMES + (REJECT_CLASS,))


class CheckpointError(ValueError):
    """A weights file that is missing, unreadable, or does not fit the named architecture."""


@dataclass
class ModelMeta:
    """What a classifier needs besides its weights, and the record of how it was made."""

    arch: str
    class_names: tuple[str, ...] = CLASS_NAMES
    input_size: int = 64
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    data: str = ""
    command: str = ""
    scores: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    width: int | None = None  # the student's channel width; None for the teacher (fixed size)


def default_weights(arch: str) -> Path:
    return MODEL_DIR / f"{arch}.pt"


def build(arch: str, num_classes: int = len(CLASS_NAMES), width: int | None = None) -> nn.Module:
    """A fresh ``arch`` model; ``width`` sets the student's channels (None: the default)."""
    if arch not in BUILDERS:
        raise CheckpointError(f"unknown model {arch!r}; expected one of {sorted(BUILDERS)}")
    if arch == "student":
        return build_student(num_classes, width or student_net.DEFAULT_WIDTH)
    if width is not None:
        raise CheckpointError(f"the {arch} has a fixed size; it takes no width")
    return BUILDERS[arch](num_classes=num_classes)


def save(path: Path, model: nn.Module, meta: ModelMeta) -> None:
    """Save weights and metadata atomically, so a crash never leaves half a file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if meta.arch == "student":  # the width recorded is always the model's own
        meta = replace(meta, width=model.width)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "meta": _plain(asdict(meta)),
        "state_dict": state,
    }
    with atomic_path(Path(path)) as tmp:
        save_torch(payload, tmp)


def load(path: Path, arch: str | None = None) -> tuple[nn.Module, ModelMeta]:
    """Load a checkpoint into a fresh model in eval mode.

    Everything the app later relies on is checked here, so that a bad file is refused
    at start-up instead of producing labels or scores outside the events format.

    Args:
        path: the ``.pt`` file.
        arch: when given, the file must hold this architecture.

    Raises:
        CheckpointError: with a one-line reason naming the file.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a weights file")
    if not path.is_file():
        raise CheckpointError(f"weights file {path} not found")
    payload = _read(path)
    meta = _read_meta(path, payload["meta"])
    if arch is not None and meta.arch != arch:
        raise CheckpointError(f"{path} holds a {meta.arch} model, not a {arch}")
    state = _check_weights(path, payload["state_dict"])
    model = build(meta.arch, len(meta.class_names), meta.width)
    check_dtypes(path, model.state_dict(), state, CheckpointError)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(
            f"{path} does not fit the {meta.arch} architecture ({first})"
        ) from None
    model.eval()
    return model, meta


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _plain(value: Any) -> Any:
    """Turn tuples into lists and numpy scalars into floats so weights_only can load them."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value


def _read(path: Path) -> dict[str, Any]:
    """Unpickle ``path`` safely and check its outer layout; torch's own advice never leaks."""
    try:
        payload = load_plain(path)
    except UnreadableWeights as exc:
        raise CheckpointError(f"{path} {exc}") from None
    if isinstance(payload, dict) and payload.get("format") == DETECTOR_FORMAT:
        raise CheckpointError(
            f"{path} holds face detector weights (training.tune_detector), not a classifier; "
            "the app and training.evaluate take it as --detector-weights"
        )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a MaskWatch checkpoint")
    version = payload.get("version")
    if type(version) is not int:
        raise CheckpointError(f"{path} is a damaged MaskWatch checkpoint (no format version)")
    if version > VERSION:
        raise CheckpointError(
            f"{path} was made by a newer MaskWatch (format version {version}); "
            f"this one reads version {VERSION}"
        )
    if version != VERSION:
        raise CheckpointError(f"{path} has an unknown format version {version}")
    if not isinstance(payload.get("meta"), dict) or "state_dict" not in payload:
        raise CheckpointError(f"{path} is a damaged MaskWatch checkpoint (no metadata or weights)")
    return payload


def _read_meta(path: Path, raw: dict[str, Any]) -> ModelMeta:
    """Build the metadata field by field, refusing any value the app could not use."""

    def refuse(name: str, need: str) -> CheckpointError:
        shown = " ".join(repr(raw.get(name)).split())  # a tensor's repr spans lines
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return CheckpointError(
            f"{path} has unusable metadata: {name!r} must be {need}, not {shown}"
        )

    arch = raw.get("arch")
    if not isinstance(arch, str) or arch not in BUILDERS:
        raise refuse("arch", " or ".join(sorted(BUILDERS)))
    defaults = ModelMeta(arch=arch)
    names = raw.get("class_names", defaults.class_names)
    text = isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)
    if not text or tuple(names) not in KNOWN_CLASS_NAMES:
        raise refuse("class_names", " or ".join(map(repr, KNOWN_CLASS_NAMES)))
    size = raw.get("input_size", defaults.input_size)
    if type(size) is not int or not INPUT_SIZES[0] <= size <= INPUT_SIZES[1]:
        raise CheckpointError(f"{path} gives an impossible input size {size!r}")
    mean = _three_numbers(raw.get("mean", defaults.mean))
    if mean is None:
        raise refuse("mean", "three finite numbers")
    std = _three_numbers(raw.get("std", defaults.std))
    if std is None or min(std) <= 0:
        raise refuse("std", "three finite numbers above zero")
    record = {}
    for name, kind in (("data", str), ("command", str), ("scores", dict), ("extra", dict)):
        record[name] = raw.get(name, getattr(defaults, name))
        if not isinstance(record[name], kind):
            raise refuse(name, "text" if kind is str else "a table")
    return ModelMeta(arch, tuple(names), size, mean, std, **record, width=_width(path, arch, raw))


def _width(path: Path, arch: str, raw: dict[str, Any]) -> int | None:
    """The student's width as recorded (older files recorded none: they hold the legacy
    width); the teacher has none."""
    if arch != "student":
        if raw.get("width") is not None:
            raise CheckpointError(f"{path} gives the {arch} a width; only the student has one")
        return None
    width = raw.get("width", student_net.LEGACY_WIDTH)
    low, high = student_net.WIDTH_RANGE
    if type(width) is not int or not low <= width <= high:
        raise CheckpointError(
            f"{path} gives an impossible student width {width!r} (expected {low} to {high})"
        )
    return width


def _three_numbers(value: Any) -> tuple[float, float, float] | None:
    """``value`` as three finite floats (one per colour channel), or None if it is not that."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    if not all(math.isfinite(v) for v in value):
        return None
    return tuple(float(v) for v in value)


def _check_weights(path: Path, state: Any) -> dict[str, torch.Tensor]:
    """The state dict, once it is a table of plain tensors with no NaN or infinity in them."""
    if not isinstance(state, dict):
        kind = type(state).__name__
        raise CheckpointError(
            f"{path} is a damaged MaskWatch checkpoint (its weights are a {kind}, not a table)"
        )
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(
                f"{path} is a damaged MaskWatch checkpoint (a weight name is not text)"
            )
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
            raise CheckpointError(
                f"{path} is a damaged MaskWatch checkpoint (weight {key!r} is not a tensor)"
            )
        floating = value.is_floating_point() or value.is_complex()
        if floating and not torch.isfinite(value).all():
            raise CheckpointError(f"{path} has weights that are not finite numbers (in {key!r})")
    return state
