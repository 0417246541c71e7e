"""One checkpoint format for teacher and student: weights plus the metadata to use them.

A checkpoint is a plain dict of tensors and built-in types so that it loads with
``torch.load(weights_only=True)``; nothing in it can run code when loaded.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from app.atomic import atomic_path
from models import CLASS_NAMES, MODEL_DIR
from models.student import build_student
from models.teacher import build_teacher

log = logging.getLogger(__name__)

FORMAT = "maskwatch-checkpoint"
VERSION = 1
BUILDERS = {"teacher": build_teacher, "student": build_student}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def default_weights(arch: str) -> Path:
    return MODEL_DIR / f"{arch}.pt"


def build(arch: str, num_classes: int = len(CLASS_NAMES)) -> nn.Module:
    if arch not in BUILDERS:
        raise CheckpointError(f"unknown model {arch!r}; expected one of {sorted(BUILDERS)}")
    return BUILDERS[arch](num_classes=num_classes)


def save(path: Path, model: nn.Module, meta: ModelMeta) -> None:
    """Save weights and metadata atomically, so a crash never leaves half a file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "meta": _plain(asdict(meta)),
        "state_dict": state,
    }
    with atomic_path(Path(path)) as tmp:
        torch.save(payload, tmp)


def load(path: Path, arch: str | None = None) -> tuple[nn.Module, ModelMeta]:
    """Load a checkpoint into a fresh model in eval mode.

    Args:
        path: the ``.pt`` file.
        arch: when given, the file must hold this architecture.

    Raises:
        CheckpointError: with a one-line reason naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - garbage makes the unpickler raise anything
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in reason:  # torch's text suggests an unsafe load: never pass it on
            reason = "not a PyTorch weights file, or it holds code, which MaskWatch never loads"
        raise CheckpointError(f"{path} is not a readable MaskWatch checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a MaskWatch checkpoint")
    if not isinstance(payload.get("meta"), dict) or "state_dict" not in payload:
        raise CheckpointError(f"{path} is a damaged MaskWatch checkpoint (no metadata or weights)")
    meta_dict = dict(payload["meta"])
    try:
        meta = ModelMeta(
            **{k: v for k, v in meta_dict.items() if k in ModelMeta.__dataclass_fields__}
        )
    except TypeError as exc:
        raise CheckpointError(f"{path} has unusable metadata ({exc})") from None
    meta.class_names = tuple(meta.class_names)
    meta.mean, meta.std = tuple(meta.mean), tuple(meta.std)
    if not isinstance(meta.input_size, int) or not 8 <= meta.input_size <= 1024:
        raise CheckpointError(f"{path} gives an impossible input size {meta.input_size!r}")
    if len(meta.class_names) < 2 or len(meta.mean) != 3 or len(meta.std) != 3:
        raise CheckpointError(f"{path} has unusable metadata (classes, mean or std)")
    if arch is not None and meta.arch != arch:
        raise CheckpointError(f"{path} holds a {meta.arch} model, not a {arch}")
    model = build(meta.arch, len(meta.class_names))
    try:
        model.load_state_dict(payload["state_dict"])
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
