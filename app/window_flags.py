"""The command line's settings laid over the window's saved preferences, kept inside the
ranges the window's controls can show."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.device import DeviceError, resolve_device
from app.preferences import MAX_ALERT_DELAY_S, MIN_FACE_RANGE, NEAR_FACE_RANGE, Preferences

log = logging.getLogger(__name__)


def clamped(flag: str, value: float, low: float, high: float, unit: str) -> float:
    """``value`` moved into the window's range ``low``-``high``, with a warning if it had to."""
    inside = min(max(value, low), high)
    if inside != value:
        log.warning(
            "%s %g is outside the window's range %g-%g %s; using %g",
            flag,
            value,
            low,
            high,
            unit,
            inside,
        )
    return inside


@dataclass(frozen=True)
class WindowFlags:
    """What the command line gave the window; None keeps the saved setting."""

    model: str | None = None
    device: str | None = None
    alert_delay_s: float | None = None
    sensitivity: str | None = None
    min_face: int | None = None
    near_face: int | None = None


def apply_command_line(prefs: Preferences, given: WindowFlags) -> None:
    """Put what the command line gave into ``prefs``.

    Values outside what the window's controls allow are moved to the nearest allowed one,
    with a warning, so the window never runs with a setting it cannot show.
    """
    if given.device is not None:
        resolve_device(given.device)  # an impossible --device fails on the command line
        prefs.device = given.device
    else:
        try:
            resolve_device(prefs.device)
        except DeviceError as exc:
            log.warning("saved device %r is not usable here (%s); using auto", prefs.device, exc)
            prefs.device = "auto"
    prefs.model = given.model or prefs.model
    if given.alert_delay_s is not None:
        prefs.alert_delay_s = clamped(
            "--alert-delay", given.alert_delay_s, 0, MAX_ALERT_DELAY_S, "s"
        )
    if given.sensitivity is not None:
        prefs.sensitivity = given.sensitivity
    if given.min_face is not None:
        prefs.min_face_size = int(clamped("--min-face", given.min_face, *MIN_FACE_RANGE, "px"))
    if given.near_face is not None:  # 0 turns the pass off and keeps the saved size
        prefs.near_faces = given.near_face > 0
        if given.near_face > 0:
            prefs.near_face_size = int(
                clamped("--near-face", given.near_face, *NEAR_FACE_RANGE, "px")
            )
