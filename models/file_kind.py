"""Tell a model file by its first bytes and archive listing, without unpickling it.

The app refuses to write a report, a recording or figures over a model, whatever its name:
a checkpoint copied to ``/data/teacher_copy.pt`` is as much the user's work as the shipped
one. ``torch.save`` writes a zip archive holding ``<name>/data.pkl``; TorchScript adds
``<name>/constants.pkl`` and code; files from torch before 1.6 begin with a pickled magic
number (as text at pickle protocols 0 and 1). ONNX has no signature: after those, a file is
ONNX by its suffix, or when its protobuf opens as a model's does (the IR version, field 1,
then one of the next fields) and reads as a model with a graph, so a renamed export is
known too.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

WEIGHTS = "PyTorch weights"
TORCHSCRIPT = "a TorchScript model"
ONNX = "an ONNX model"
# torch's legacy serialisation opens with a pickle header (protocol 2 to 5; from 4 on a frame
# opcode follows it), then its magic number pickled as a long: 0x1950a86a20f9469cfc6c.
LEGACY_TORCH_MAGIC = bytes.fromhex("8a0a6cfc9c46f9206aa85019")
LEGACY_HEADER_BYTES = 2 + 9  # PROTO and its version, then at most a FRAME and its length
# Pickle protocols 0 and 1 have no header and write that long as text: L<decimal>L, newline.
LEGACY_TEXT_MAGIC = b"L%dL\n" % int.from_bytes(LEGACY_TORCH_MAGIC[2:], "little")
# An ONNX ModelProto as written opens with ir_version (field 1, a small varint), then a later
# field in number order: producer_name, producer_version, domain, model_version, doc_string,
# graph, opset_import or metadata_props.
ONNX_IR_TAG = 0x08
ONNX_NEXT_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72})
MAX_ONNX_IR_VERSION = 63


def _archive_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []


def model_kind(path: Path) -> str | None:
    """What model ``path`` holds (WEIGHTS, TORCHSCRIPT or ONNX), or None for any other file
    and for a path that is not a readable file."""
    path = Path(path)
    if not path.is_file():
        return None
    names = _archive_names(path)
    if any(n.endswith(("/constants.pkl", "/code/")) for n in names):
        return TORCHSCRIPT
    if any(n.endswith("/data.pkl") for n in names):
        return WEIGHTS
    try:
        with path.open("rb") as file:
            start = file.read(
                max(LEGACY_HEADER_BYTES + len(LEGACY_TORCH_MAGIC), len(LEGACY_TEXT_MAGIC))
            )
    except OSError:
        return None
    if start[:1] == b"\x80" and LEGACY_TORCH_MAGIC in start:
        return WEIGHTS
    if start.startswith(LEGACY_TEXT_MAGIC):
        return WEIGHTS
    if path.suffix.lower() == ".onnx" or (_opens_like_onnx(start) and _parses_as_onnx(path)):
        return ONNX  # by suffix only after the contents: weights named .onnx are weights
    return None


def _parses_as_onnx(path: Path) -> bool:
    """Whether ``path`` reads as an ONNX model with a graph and an opset (a file that only
    opens like one, as any protobuf may, does not)."""
    try:
        import onnx
    except ImportError:  # no onnx to ask: the opening bytes have to do
        return True
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a file that is no ModelProto raises decode errors
        return False
    return bool(model.opset_import) and bool(model.graph.node or model.graph.input)


def _opens_like_onnx(start: bytes) -> bool:
    return (
        len(start) >= 3
        and start[0] == ONNX_IR_TAG
        and 1 <= start[1] <= MAX_ONNX_IR_VERSION
        and start[2] in ONNX_NEXT_TAGS
    )
