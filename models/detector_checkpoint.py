"""Weights for MTCNN's three nets, tuned by ``training.tune_detector``, and their record.

The file is a plain dict (``pnet``, ``rnet``, ``onet`` state dicts plus ``meta``) so that it
loads with ``torch.load(weights_only=True)``. The stock weights that ship inside
facenet-pytorch are the starting point and the fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from app.atomic import atomic_path
from app.digest import file_digest
from models import MODEL_DIR
from models.safe_load import UnreadableWeights, check_dtypes, load_plain
from models.torch_files import save_torch

FORMAT = "maskwatch-detector"
VERSION = 1
NETS = ("pnet", "rnet", "onet")
DEFAULT_DETECTOR = MODEL_DIR / "detector.pt"


class DetectorWeightsError(ValueError):
    """A detector weights file that is missing, unreadable or does not fit MTCNN."""


def save(path: Path, mtcnn, meta: dict[str, Any]) -> None:
    """Write the three nets' weights and ``meta``, complete or not at all."""
    state = {"format": FORMAT, "version": VERSION, "meta": meta}
    for name in NETS:
        state[name] = {k: v.detach().cpu() for k, v in getattr(mtcnn, name).state_dict().items()}
    with atomic_path(Path(path)) as tmp:
        save_torch(state, tmp)


def read(path: Path) -> dict[str, Any]:
    """The checkpoint's dict, checked for format; raises DetectorWeightsError."""
    path = Path(path)
    if not str(path).strip() or str(path) == ".":
        raise DetectorWeightsError("no detector weights file named (give a file, or stock)")
    if path.is_dir():
        raise DetectorWeightsError(f"{path} is a folder, not a detector weights file")
    if not path.is_file():
        raise DetectorWeightsError(f"detector weights {path} not found")
    try:
        state = load_plain(path)
    except UnreadableWeights as exc:
        raise DetectorWeightsError(f"detector weights {path} {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DetectorWeightsError(f"{path} is not a MaskWatch detector weights file")
    if state.get("version") != VERSION:
        raise DetectorWeightsError(f"{path} has detector format version {state.get('version')}")
    if not isinstance(state.get("meta", {}), dict):
        raise DetectorWeightsError(f"{path} is a damaged detector weights file (its record)")
    for name in NETS:
        weights = state.get(name)
        if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(t, torch.Tensor) and t.layout == torch.strided
            for k, t in weights.items()
        ):
            raise DetectorWeightsError(f"{path}: the {name} weights do not fit MTCNN")
        bad = [k for k, t in weights.items() if t.is_floating_point() and not t.isfinite().all()]
        if bad:
            raise DetectorWeightsError(f"{path}: {name} weight {bad[0]} is not finite")
    return state


def load_into(path: Path, mtcnn) -> dict[str, Any]:
    """Load the tuned weights into an MTCNN's nets; returns the metadata."""
    state = read(path)
    for name in NETS:
        net = getattr(mtcnn, name)
        check_dtypes(path, net.state_dict(), state[name], DetectorWeightsError)
        try:
            net.load_state_dict(state[name])
        except (KeyError, RuntimeError, TypeError, AttributeError, ValueError):
            raise DetectorWeightsError(f"{path}: the {name} weights do not fit MTCNN") from None
        _check_answers(path, name, net)
    return dict(state.get("meta") or {})


WINDOWS = {"pnet": 12, "rnet": 24, "onet": 48}  # each net's input side


@torch.no_grad()
def _check_answers(path: Path, name: str, net: torch.nn.Module) -> None:
    """Refuse weights whose net answers a plain face-sized window with non-numbers: finite
    but huge weights overflow, and the detector would then silently find nothing."""
    side = WINDOWS[name]
    window = torch.linspace(-1, 1, 3 * side * side).reshape(1, 3, side, side)
    param = next(net.parameters())
    was_training = net.training
    net.eval()
    outputs = net(window.to(param.device, param.dtype))
    net.train(was_training)
    if not all(torch.isfinite(o).all() for o in outputs):
        raise DetectorWeightsError(f"{path}: the {name} weights give answers that are not numbers")


def identity(weights: str) -> str:
    """What ``DetectorConfig.weights`` resolves to, as a short digest for cache keys."""
    path = DEFAULT_DETECTOR if weights == "default" else Path(weights)
    if weights == "stock" or not path.is_file():
        return "stock"
    return file_digest(path)[:16]
