"""The command line's settings laid over the window's saved preferences, kept inside the
ranges the window's controls can show."""

from __future__ import annotations

import logging

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


def apply_command_line(
    prefs: Preferences,
    model: str | None = None,
    device: str | None = None,
    alert_delay_s: float | None = None,
    sensitivity: str | None = None,
    min_face: int | None = None,
    near_face: int | None = None,
) -> None:
    """Put what the command line gave (None: keep the saved setting) into ``prefs``.

    Values outside what the window's controls allow are moved to the nearest allowed one,
    with a warning, so the window never runs with a setting it cannot show.
    """
    if device is not None:
        resolve_device(device)  # an impossible --device fails on the command line
        prefs.device = device
    else:
        try:
            resolve_device(prefs.device)
        except DeviceError as exc:
            log.warning("saved device %r is not usable here (%s); using auto", prefs.device, exc)
            prefs.device = "auto"
    prefs.model = model or prefs.model
    if alert_delay_s is not None:
        prefs.alert_delay_s = clamped("--alert-delay", alert_delay_s, 0, MAX_ALERT_DELAY_S, "s")
    if sensitivity is not None:
        prefs.sensitivity = sensitivity
    if min_face is not None:
        prefs.min_face_size = int(clamped("--min-face", min_face, *MIN_FACE_RANGE, "px"))
    if near_face is not None:  # 0 turns the pass off and keeps the saved size
        prefs.near_faces = near_face > 0
        if near_face > 0:
            prefs.near_face_size = int(clamped("--near-face", near_face, *NEAR_FACE_RANGE, "px"))
