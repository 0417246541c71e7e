"""Unpickle a weights file with ``torch.load(weights_only=True)`` and say plainly why not.

Classifier checkpoints and detector weights share this: whatever a user hands the app in
place of weights (a TorchScript or ONNX export, a pickle that would run code, a cut-off
download), the refusal names what the file is, and torch's own warnings never leak out.
Weights whose numbers are of the wrong kind are refused here for both as well.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from models.file_kind import ONNX, TORCHSCRIPT, model_kind


class UnreadableWeights(ValueError):
    """Why a file could not be unpickled as plain weights; the text follows the file name."""


def load_plain(path: Path) -> Any:
    """The unpickled contents of ``path``, built-in types and tensors only.

    Raises:
        UnreadableWeights: with a reason such as "holds Python objects, not plain weights".
    """
    path = Path(path)
    kind = model_kind(path)
    if kind == ONNX:
        raise UnreadableWeights("is an ONNX export; the app loads .pt weights files")
    if kind == TORCHSCRIPT:
        raise UnreadableWeights(
            "is a TorchScript export (training.export), not a weights file; give the .pt "
            "weights that training wrote"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice is about its API, not the file
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        if not _readable(path):
            raise UnreadableWeights(f"cannot be read ({exc.strerror or exc})") from None
        damaged = exc  # torch seeks past the end of a cut-off archive: EINVAL, not access
    except Exception as exc:  # noqa: BLE001 - garbage makes the unpickler raise anything
        damaged = exc
    raise _damaged(damaged) from None


def _readable(path: Path) -> bool:
    """Whether the file itself opens and reads, so a failure lies in its contents."""
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError:
        return False
    return True


def _damaged(exc: Exception) -> UnreadableWeights:
    """The refusal of a file torch could open but not unpickle as plain weights."""
    # torch names a refused class a "global" (its case has changed between versions);
    # garbage bytes fail on an opcode or the zip layout instead.
    if "unsupported global" in str(exc).lower():
        return UnreadableWeights("holds Python objects, not plain weights; refusing to load it")
    return UnreadableWeights(
        "is not a readable weights file (damaged, truncated, or not a PyTorch file)"
    )


def check_dtypes(path: Path, want: dict, state: dict, error: type[Exception]) -> None:
    """Refuse weights of the wrong kind of number where the model keeps real numbers.

    torch would copy integer weights into the model without a word (every answer then the
    same) and only warn about complex ones.
    """
    for key, value in state.items():
        target = want.get(key)
        if target is None or not target.is_floating_point():
            continue
        if value.is_complex() or not value.is_floating_point():
            raise error(f"{path}: weight {key!r} holds {value.dtype} numbers, not real ones")
