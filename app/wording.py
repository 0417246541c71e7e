"""Small pieces of the window's sentences: face lists, media times, capitals, and how a
failed folder is named, kept apart so the log and the window word things alike."""

from __future__ import annotations

from pathlib import Path

from app.atomic import describe_error, why_unwritable


def faces_named(track_ids: list[int]) -> str:
    """ "face 3", "faces 2 and 3", "faces 1, 2 and 3"."""
    if len(track_ids) == 1:
        return f"face {track_ids[0]}"
    *first, last = track_ids
    return f"faces {', '.join(map(str, first))} and {last}"


def clock(seconds: float) -> str:
    """Media time as m:ss (or h:mm:ss)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def sentence(text: str) -> str:
    """``text`` with a capital first letter, unless it starts with a path or URL (kept as is)."""
    first = text.split(" ", 1)[0]
    return text[:1].upper() + text[1:] if first.isalpha() else text


def logged_as(message: str) -> str:
    """A message of the side panel as the log has it: on one line."""
    return " ".join(message.split("\n"))


def naming(folder: Path, preposition: str, exc: OSError) -> str:
    """ " in FOLDER: REASON", or just ": REASON" when the reason names the folder already."""
    reason = describe_error(exc)
    return f": {reason}" if str(folder) in reason else f"{preposition} {folder}: {reason}"


def unwritable(folder: Path, kind: str) -> str | None:
    """ "FOLDER is not writable (REASON); pick another KIND folder in the Alerts & files tab",
    or None when a file can be made in ``folder`` or it is no folder (its own error says so).

    Said before what a failed write or a free-space check would say: /proc and /sys report
    0 bytes free and "no such file" for a file in a folder that is there.
    """
    reason = why_unwritable(folder) if Path(folder).is_dir() else None
    if reason is None:
        return None
    where = "in the Alerts & files tab"
    return f"{folder} is not writable ({reason}); pick another {kind} folder {where}"
