"""Checks of command-line values that several commands share, each naming its flag."""

from __future__ import annotations

import argparse
from pathlib import Path


def require_counts(*flags: tuple[str, int]) -> None:
    """Raise ValueError naming the first (flag, value) pair whose value is below 1."""
    for flag, value in flags:
        if value < 1:
            raise ValueError(f"{flag} must be at least 1, not {value}")


def output_file(text: str) -> Path:
    """argparse type of a flag naming a file to write: a name ending in '/' names a folder,
    and Path() would drop that slash without a word."""
    if text.endswith("/"):
        raise argparse.ArgumentTypeError(f"{text} ends in '/', as a folder does; name a file")
    return Path(text)
