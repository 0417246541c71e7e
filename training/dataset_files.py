"""Find the images of a class-folder dataset and map folder names to MaskWatch labels."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

import numpy as np

from app.source import is_utf8, shown_name

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
NAMED_AT_MOST = 5  # a warning about many files names this many and counts the rest


class DatasetError(ValueError):
    """A folder that cannot be used as a training or evaluation set."""


@dataclass
class DatasetFiles:
    images: list[tuple[Path, str]]  # (file, label)
    skipped: list[Path]  # files that are plainly not images (text, metadata, hidden)
    left_out: list[str] = field(default_factory=list)  # "file: why", for images not used


def class_folders(root: Path) -> list[Path]:
    """The class folders of the set at ``root`` (``with_mask/``, ``without_mask/`` or
    synonyms), without reading what they hold: the check a command makes before any work.

    Raises:
        DatasetError: when the folder is missing or a file, or lacks a class folder.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file, not a dataset folder")
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} not found")
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in FOLDER_LABELS]
    if not folders:
        raise DatasetError(f"{root} has no class folders (expected with_mask/ and without_mask/)")
    missing = {"mask", "no_mask"} - {FOLDER_LABELS[p.name.lower()] for p in folders}
    for path in sorted(p for p in root.iterdir() if not p.is_dir()):
        label = FOLDER_LABELS.get(path.name.lower())
        if label in missing:  # "only one class" would send the user to make a folder there
            raise DatasetError(f"{path} is a file, not a folder of {label} images")
    if missing:
        folder = {"mask": "with_mask/", "no_mask": "without_mask/"}[sorted(missing)[0]]
        raise DatasetError(f"{root} has only one class; add a {folder} folder for the other")
    return folders


def find_images(root: Path) -> DatasetFiles:
    """List the images under ``root/with_mask`` and ``root/without_mask`` (or synonyms).

    Raises:
        DatasetError: when the folder is missing or a file, has no class folders, or a class
            is empty.
    """
    root = Path(root)
    found = class_folders(root)
    classes: dict[str, list[Path]] = {}
    folders: dict[str, list[str]] = {}  # label -> the folder names that gave it, for messages
    for folder in found:
        label = FOLDER_LABELS[folder.name.lower()]
        classes.setdefault(label, []).extend(files_under(folder, others=found))
        folders.setdefault(label, []).append(folder.name + "/")
    images, skipped = [], []
    left_out = _badly_named(root, classes)
    identity = _identities(classes)
    _once_each(classes, identity)
    left_out += _under_two_labels(classes, identity)
    for label, files in sorted(classes.items()):
        # Unknown suffixes are kept: decoding decides (one shared file is "x.jpg_1088Wx1632H").
        kept = [f for f in files if not plainly_not_image(f)]
        skipped += [f for f in files if plainly_not_image(f)]
        if not kept:
            named = " and ".join(folders[label])
            raise DatasetError(f"{named} in {root} holds no images (class {label})")
        images += [(f, label) for f in kept]
    return DatasetFiles(images, skipped, left_out)


def _badly_named(root: Path, classes: dict[str, list[Path]]) -> list[str]:
    """Take out of ``classes`` the files whose names (below ``root``) are not valid UTF-8,
    with a warning each; their "file: why" lines."""
    left_out = []
    for label, files in classes.items():
        bad = [f for f in files if not is_utf8(str(f.relative_to(root)))]
        for path in bad:
            line = f"{shown_name(str(path))}: the name is not valid UTF-8; rename the file"
            log.warning("skipped %s", line)
            left_out.append(line)
        classes[label] = [f for f in files if f not in bad]
    return left_out


def _identities(classes: dict[str, list[Path]]) -> dict[Path, tuple[int, int]]:
    """The real file (device, inode) behind each listed image, for telling links apart from
    photos; a file gone since the listing has none (reading it will say so)."""
    identity = {}
    for files in classes.values():
        for path in files:
            if plainly_not_image(path):
                continue
            with contextlib.suppress(OSError):
                stat = path.stat()
                identity[path] = (stat.st_dev, stat.st_ino)
    return identity


def _under_two_labels(
    classes: dict[str, list[Path]], identity: dict[Path, tuple[int, int]]
) -> list[str]:
    """Take out of ``classes`` every file that is one real file (same device and inode) with
    a file of another class: a link or hard link gives it both labels, and neither can be
    trusted. One warning names the first few; the "file: why" lines are returned."""
    labels_of: dict[tuple[int, int], set[str]] = {}
    for label, files in classes.items():
        for path in files:
            if path in identity:
                labels_of.setdefault(identity[path], set()).add(label)
    doubled = {key for key, labels in labels_of.items() if len(labels) > 1}
    if not doubled:
        return []
    left = sorted(p for p, key in identity.items() if key in doubled)
    for label, files in classes.items():
        classes[label] = [f for f in files if identity.get(f) not in doubled]
    log.warning(
        "left out %d files that are one photo under both mask and no_mask (a link or hard link "
        "between the class folders): %s; keep each photo in one class folder",
        len(left),
        first_few(left),
    )
    return [f"{shown_name(str(p))}: the same file is under both labels" for p in left]


def first_few(paths: list[Path]) -> str:
    """The first NAMED_AT_MOST of ``paths`` as shown names, and how many more there are."""
    named = ", ".join(shown_name(str(p)) for p in paths[:NAMED_AT_MOST])
    return named + (f" and {len(paths) - NAMED_AT_MOST} more" if len(paths) > NAMED_AT_MOST else "")


def _once_each(classes: dict[str, list[Path]], identity: dict[Path, tuple[int, int]]) -> None:
    """Keep one path of each real file within a class: a folder linked into the same class
    (``masked -> with_mask``) or a hard link listed it twice, which would weigh that photo
    double and could put its copies on both sides of the split. One warning counts them."""
    repeats = []
    for label, files in classes.items():
        seen: set[tuple[int, int]] = set()
        kept = []
        for path in files:
            key = identity.get(path)
            if key is not None and key in seen:
                repeats.append(path)
                continue
            if key is not None:
                seen.add(key)
            kept.append(path)
        classes[label] = kept
    if repeats:
        log.warning(
            "counted once %d files reached twice in one class (a link to a folder or photo "
            "already read): %s",
            len(repeats),
            first_few(repeats),
        )


def files_under(folder: Path, others: Sequence[Path] = ()) -> list[Path]:
    """Every file below ``folder``, sorted, following linked subfolders (``rglob`` does not)
    but entering each real folder once, so a link that loops back adds nothing twice.

    A link up to ``folder`` itself or a folder above it is not followed: it would list the
    other class's images under this class; nor is a link into one of ``others`` (the set's
    other class folders), which would give their photos this class's label too. Hidden
    folders (``.thumbnails``, ``.git``) hold copies and tools' files, not labelled photos:
    they are left out. Entries that are not regular files (pipes, devices, broken links) and
    folders that cannot be read are named in a warning and left out.
    """
    top = os.path.realpath(folder)
    elsewhere = [os.path.realpath(p) for p in others if os.path.realpath(p) != top]
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
            if any(real == o or real.startswith(o.rstrip(os.sep) + os.sep) for o in elsewhere):
                log.warning(
                    "not following %s: it leads into %s, another class folder of this set",
                    Path(current, name),
                    real,
                )
                continue
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
