"""Writing PyTorch files through memory, so that a full disk is an ordinary OSError.

``torch.save`` and TorchScript's ``save`` write through PyTorch's own C++ archive writer.
When the disk fills, it reports a RuntimeError ("unexpected pos ...", "iostream error"), and
TorchScript's writer may even abort the whole process while closing the archive, past any
``except``. Built in memory first and written with Python's file I/O, the same failure is an
OSError with its errno, which every command already words in one line.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch


def write_bytes(path: Path, data: io.BytesIO) -> None:
    """Write ``data`` to ``path``; a failure names the file (a full disk's OSError from
    ``write`` carries no name)."""
    try:
        with open(path, "wb") as file:
            file.write(data.getbuffer())
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def save_torch(obj, path: Path) -> None:
    """``torch.save(obj, path)``, with a full disk raised as OSError."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer)


def save_script(module: torch.jit.ScriptModule, path: Path, extra_files: dict[str, str]) -> None:
    """A TorchScript module and its extra files, with a full disk raised as OSError."""
    buffer = io.BytesIO()
    torch.jit.save(module, buffer, _extra_files=extra_files)
    write_bytes(path, buffer)
