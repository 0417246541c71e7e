"""Write files so that the final name only ever holds a complete file.

Everything MaskWatch produces for a user (videos, events, reports, weights) goes through
here: data is written under a temporary name in the same folder and renamed at the end.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


class OutputExistsError(FileExistsError):
    """Raised when an output would overwrite an existing file without permission."""


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite`` is set; make sure its folder exists."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder; name a file")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists (pass --overwrite to replace it)")
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {path.parent} does not exist")


def temp_name(path: Path) -> Path:
    """The in-progress name for ``path``: same folder, same suffix, so writers keep formats."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    """Write a whole text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
