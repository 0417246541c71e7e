"""Checks of command-line values that several commands share, each naming its flag."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from app.config import MAX_SCALE, MIN_SCALE, MTCNN_MIN_SIDE
from app.device import CUDA_NAME


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose refusals are one line under the command's own name, as its
    other errors are ("training.distill: error: ..."), rather than a usage block, and which
    takes no abbreviated flags."""

    def __init__(self, *args, error_name: str | None = None, **kwargs):
        # A flag is taken only by its whole name: with prefixes, --out would quietly mean
        # --output today and become an error the day a second flag starts the same way.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.error_name = error_name

    def error(self, message: str):
        name = self.error_name or self.prog.removeprefix("python -m ")
        self.exit(2, f"{name}: error: {message} (--help lists the flags)\n")


class FlagValueError(ValueError):
    """A flag given a value it cannot take, or without the flag it needs. Its message ends
    with the same pointer to --help that argparse's own refusals carry."""

    def __str__(self) -> str:
        return f"{super().__str__()} (--help lists the flags)"


def require_counts(*flags: tuple[str, int]) -> None:
    """Raise ValueError naming the first (flag, value) pair whose value is below 1."""
    for flag, value in flags:
        if value < 1:
            raise FlagValueError(f"{flag} must be at least 1, not {value}")


def folder_ending(text: str) -> str | None:
    """How a name given for a file ends as only a folder's name does ('/', '/.' or '/..'),
    else None. Path() drops a trailing '/' or '/.' without a word, so ``x.json/.`` would
    quietly become ``x.json``."""
    if text.endswith("/"):
        return "/"
    last = text.rsplit("/", 1)[-1]
    if last not in (".", ".."):
        return None
    return f"/{last}" if "/" in text else last


def _named(text, what: str) -> str:
    """``text`` as given, unless it is empty: Path('') would quietly mean the current
    folder. (A test may pass a Path.)"""
    text = str(text)
    if not text.strip():
        raise argparse.ArgumentTypeError(f"is empty; name {what}")
    return text


def output_file(text: str) -> Path:
    """argparse type of a flag naming a file to write, never a folder (see folder_ending),
    nor an empty name."""
    text = _named(text, "a file")
    if ending := folder_ending(text):
        raise argparse.ArgumentTypeError(
            f"{text} ends in '{ending}', as a folder does; name a file"
        )
    return Path(text)


def require_detect_scale(scale: float) -> None:
    """Refuse a --detect-scale outside what the detector takes (also nan), by its flag."""
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise FlagValueError(
            f"--detect-scale must be between {MIN_SCALE:g} and {MAX_SCALE:g}, got {scale:g}"
        )


MAX_SEED = 2**32 - 1  # numpy's seeds stop there


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def seed(text: str) -> int:
    """argparse type of --seed: a whole number NumPy and torch both take."""
    value = _whole_number(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, not {text}")
    return value


MAX_FACE_SIDE = 4096  # a face larger than any frame the app shrinks to


def near_face(text: str) -> int:
    """argparse type of --near-face: 0 (off), or a face side in pixels P-Net can take."""
    value = _whole_number(text)
    if value != 0 and not MTCNN_MIN_SIDE <= value <= MAX_FACE_SIDE:
        raise argparse.ArgumentTypeError(
            f"must be 0 (off) or between {MTCNN_MIN_SIDE} and {MAX_FACE_SIDE} pixels, not {text}"
        )
    return value


def _device_type(kinds: str, pattern: str):
    def device(text: str) -> str:
        if re.fullmatch(pattern, text.lower()):
            return text.lower()  # torch reads device names in lower case only
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use {kinds}")

    return device


# argparse types of --device: a misspelt name is refused before any work, in one line.
# Whether the device exists here is checked later, when it is opened.
device = _device_type("auto, cpu, cuda or cuda:N", rf"auto|cpu|{CUDA_NAME}")
training_device = _device_type("auto, cpu, cuda, cuda:N or mps", rf"auto|cpu|mps|{CUDA_NAME}")


def detector_weights(text: str) -> str:
    """argparse type of --detector-weights: a file, or the keyword stock or default in any
    case (STOCK means stock unless a file of that name is here)."""
    text = _named(text, "a weights file, or stock")
    if text.lower() in ("stock", "default") and not Path(text).exists():
        return text.lower()
    return text


def output_folder(text: str) -> Path:
    """argparse type of a flag naming a folder to write in, never an empty name."""
    return Path(_named(text, "a folder"))


def named(what: str):
    """argparse type of a flag whose value names something (a clip, a source) and may not
    be empty."""

    def name(text: str) -> str:
        return _named(text, what)

    return name


def input_path(text: str) -> Path:
    """argparse type of a flag naming a file or folder to read, never an empty name."""
    return Path(_named(text, "a file or folder to read"))
