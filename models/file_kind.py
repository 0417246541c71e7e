"""Tell a model file by its first bytes and archive listing, without unpickling it.

The app refuses to write a report, a recording or figures over a model, whatever its name:
a checkpoint copied to ``/data/teacher_copy.pt`` is as much the user's work as the shipped
one. ``torch.save`` writes a zip archive holding ``<name>/data.pkl``; TorchScript adds
``<name>/constants.pkl`` and code; files from torch before 1.6 begin with a pickled magic
number; ONNX models are told by their suffix (a protobuf has no signature to read).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

# torch's legacy serialisation: pickle protocol 2, then the long 0x1950a86a20f9469cfc6c
LEGACY_TORCH_START = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")


def _archive_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []


def is_torchscript(path: Path) -> bool:
    return any(n.endswith(("/constants.pkl", "/code/")) for n in _archive_names(path))


def model_kind(path: Path) -> str | None:
    """What model ``path`` holds ("PyTorch weights", "a TorchScript model", "an ONNX
    model"), or None for any other file and for a path that is not a readable file."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix.lower() == ".onnx":
        return "an ONNX model"
    names = _archive_names(path)
    if any(n.endswith(("/constants.pkl", "/code/")) for n in names):
        return "a TorchScript model"
    if any(n.endswith("/data.pkl") for n in names):
        return "PyTorch weights"
    try:
        with path.open("rb") as file:
            start = file.read(len(LEGACY_TORCH_START))
    except OSError:
        return None
    return "PyTorch weights" if start == LEGACY_TORCH_START else None
