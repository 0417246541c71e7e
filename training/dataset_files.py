"""Find the images of a class-folder dataset and map folder names to MaskWatch labels."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TypeVar

import numpy as np

log = logging.getLogger(__name__)
T = TypeVar("T")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
SKIPPED_SUFFIXES = {
    *(".txt", ".md", ".markdown", ".rst", ".html", ".pdf", ".log", ".cff"),  # notes
    *(".json", ".jsonl", ".xml", ".csv", ".tsv", ".yaml", ".yml", ".toml"),  # annotations
    *(".db", ".ini", ".cfg", ".ipynb", ".py", ".sh"),  # tables, settings and scripts
    *(".zip", ".tar", ".gz", ".bz2", ".xz", ".7z", ".rar"),  # archives that came with a set
}
# A dataset's notes often carry no image suffix (LICENSE, LICENSE-MIT, COPYING.LESSER).
SKIPPED_NAMES = {
    *("license", "licence", "copying", "notice", "authors", "citation"),
    *("readme", "changelog", "changes", "notes"),
}
FOLDER_LABELS = {
    "with_mask": "mask",
    "mask": "mask",
    "masked": "mask",
    "without_mask": "no_mask",
    "no_mask": "no_mask",
    "unmasked": "no_mask",
}


class DatasetError(ValueError):
    """A folder that cannot be used as a training or evaluation set."""


@dataclass
class DatasetFiles:
    images: list[tuple[Path, str]]  # (file, label)
    skipped: list[Path]  # files that are plainly not images (text, metadata, hidden)


def find_images(root: Path) -> DatasetFiles:
    """List the images under ``root/with_mask`` and ``root/without_mask`` (or synonyms).

    Raises:
        DatasetError: when the folder is missing or a file, has no class folders, or a class
            is empty.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file, not a dataset folder")
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} not found")
    classes: dict[str, list[Path]] = {}
    folders: dict[str, list[str]] = {}  # label -> the folder names that gave it, for messages
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = FOLDER_LABELS.get(folder.name.lower())
        if label is not None:
            classes.setdefault(label, []).extend(files_under(folder))
            folders.setdefault(label, []).append(folder.name + "/")
    if not classes:
        raise DatasetError(f"{root} has no class folders (expected with_mask/ and without_mask/)")
    missing = {"mask", "no_mask"} - set(classes)
    for path in sorted(p for p in root.iterdir() if not p.is_dir()):
        label = FOLDER_LABELS.get(path.name.lower())
        if label in missing:  # "only one class" would send the user to make a folder there
            raise DatasetError(f"{path} is a file, not a folder of {label} images")
    if missing:
        folder = {"mask": "with_mask/", "no_mask": "without_mask/"}[sorted(missing)[0]]
        raise DatasetError(f"{root} has only one class; add a {folder} folder for the other")
    images, skipped = [], []
    for label, files in sorted(classes.items()):
        # Unknown suffixes are kept: decoding decides (one shared file is "x.jpg_1088Wx1632H").
        kept = [f for f in files if not plainly_not_image(f)]
        skipped += [f for f in files if plainly_not_image(f)]
        if not kept:
            named = " and ".join(folders[label])
            raise DatasetError(f"{named} in {root} holds no images (class {label})")
        images += [(f, label) for f in kept]
    return DatasetFiles(images, skipped)


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted, following linked subfolders (``rglob`` does not)
    but entering each real folder once, so a link that loops back adds nothing twice.

    A link up to ``folder`` itself or a folder above it is not followed: it would list the
    other class's images under this class. Hidden folders (``.thumbnails``, ``.git``) hold
    copies and tools' files, not labelled photos: they are left out. Entries that are not
    regular files (pipes, devices, broken links) and folders that cannot be read are named in
    a warning and left out.
    """
    top = os.path.realpath(folder)
    seen: set[str] = set()
    files = []

    def unreadable(exc: OSError) -> None:
        log.warning("skipped %s: %s", exc.filename, (exc.strerror or str(exc)).lower())

    for current, subfolders, names in os.walk(folder, onerror=unreadable, followlinks=True):
        seen.add(os.path.realpath(current))
        entered = []
        for name in sorted(subfolders):
            if name.startswith("."):
                log.info("not reading the hidden folder %s", Path(current, name))
                continue
            real = os.path.realpath(os.path.join(current, name))
            if real in seen or top == real or top.startswith(real.rstrip(os.sep) + os.sep):
                log.warning(
                    "not following %s: it leads to %s, which is read already or holds this "
                    "class folder",
                    Path(current, name),
                    real,
                )
                continue
            seen.add(real)
            entered.append(name)
        subfolders[:] = entered
        for name in names:
            path = Path(current, name)
            if path.is_file():
                files.append(path)
            else:
                log.warning("skipped %s: not a regular file (a pipe, device or broken link)", path)
    return sorted(files)


def plainly_not_image(path: Path) -> bool:
    """Hidden files and notes, annotations, tables or scripts: never read as images.

    A file named like a note (``README``, ``LICENSE-MIT``) with an image suffix is an image.
    """
    name, suffix = path.name.lower().strip(), path.suffix.lower()
    if name.startswith(".") or suffix in SKIPPED_SUFFIXES:
        return True
    stem = re.split(r"[.\-_ ]", name, maxsplit=1)[0]
    return stem in SKIPPED_NAMES and suffix not in IMAGE_SUFFIXES


def spread(items: Sequence[T], limit: int | None) -> list[T]:
    """At most ``limit`` items picked at even steps, so every part of a sorted list shows."""
    if limit is None or limit >= len(items):
        return list(items)
    picks = np.unique(np.linspace(0, len(items) - 1, limit).round().astype(int))
    return [items[i] for i in picks]
