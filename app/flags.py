"""Checks of command-line values that several commands share, each naming its flag."""

from __future__ import annotations


def require_counts(*flags: tuple[str, int]) -> None:
    """Raise ValueError naming the first (flag, value) pair whose value is below 1."""
    for flag, value in flags:
        if value < 1:
            raise ValueError(f"{flag} must be at least 1, not {value}")
