"""What the window remembers between runs (QSettings) and where it puts the files it writes.

The real app keeps its settings under organisation and application "MaskWatch" in an INI file
in the user's config folder; tests pass a QSettings on a temporary INI file instead. A window
without settings remembers nothing and writes into a temporary folder.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from app.alerts import DEFAULT_DELAY_S
from app.config import SENSITIVITY, DetectorConfig
from app.detector import MTCNN_MIN_SIDE
from app.pipeline import MODEL_NAMES
from app.source import MAX_CAMERA_INDEX, describe, shown_source

log = logging.getLogger(__name__)

ORGANISATION = APPLICATION = "MaskWatch"
MAX_ALERT_DELAY_S = 600.0
FOLDER_FIELDS = ("alerts_dir", "snapshots_dir", "recordings_dir", "exports_dir")
MIN_FACE_RANGE = (MTCNN_MIN_SIDE, 200)  # pixels; what the window's spin box allows
# Pixels; the close-up pass's spin box. Below 40 it would rerun the stock nets on the small
# faces the tuned ones are for; 1000 is a face filling a 1080p frame.
NEAR_FACE_RANGE = (40, 1000)


def user_settings() -> QSettings:
    """The user's MaskWatch settings (an INI file, so every platform stores them alike)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION
    )


def save_problem(settings: QSettings) -> str | None:
    """Why ``settings`` could not be written, in words, or None; Qt says so only through
    ``status()``. (A file Qt cannot parse is replaced by the new settings: not a problem.)"""
    if settings.status() != QSettings.Status.AccessError:
        return None
    return f"settings cannot be saved to {settings.fileName()}: it cannot be written"


def keep_private(path: Path) -> None:
    """Let only the user read ``path``: it holds a stream URL with its login or token.

    The URL is stored as typed, so the window can open the stream again next time; like a
    browser's saved logins it is plain text, guarded only by the file's permissions.
    """
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError as exc:
        log.warning("could not make %s private to you: %s", path, exc)


def _standard(location: QStandardPaths.StandardLocation) -> Path | None:
    path = QStandardPaths.writableLocation(location)
    return Path(path) if path else None


def user_folders() -> dict[str, Path]:
    """Default output folders in the user's standard locations."""
    generic = _standard(QStandardPaths.StandardLocation.GenericDataLocation)
    data = (generic or Path.home() / ".local" / "share") / APPLICATION
    pictures = _standard(QStandardPaths.StandardLocation.PicturesLocation)
    movies = _standard(QStandardPaths.StandardLocation.MoviesLocation)
    documents = _standard(QStandardPaths.StandardLocation.DocumentsLocation)
    return {
        "alerts_dir": data / "alerts",
        "snapshots_dir": pictures / APPLICATION if pictures else data / "snapshots",
        "recordings_dir": movies / APPLICATION if movies else data / "recordings",
        "exports_dir": documents or data,
    }


def temporary_folders() -> dict[str, Path]:
    """Output folders under one temporary folder for a window that remembers nothing."""
    base = Path(tempfile.gettempdir()) / f"maskwatch-{os.getpid()}"
    return {name: base / name.removesuffix("_dir") for name in FOLDER_FIELDS}


TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _as_bool(value, key: str, default: bool, ignored: dict[str, str]) -> bool:
    """A saved yes/no; a hand-edited word that is neither is warned about, its key added to
    ``ignored``, and the default returned."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    _ignore(ignored, key, "ignoring saved %s %r: use true or false", key, value)
    return default


def _as_size(
    settings: QSettings, key: str, default: int, allowed: tuple[int, int], ignored: dict
) -> int:
    """A saved size in whole pixels within ``allowed``; anything else is warned about, its
    key added to ``ignored``, and the default returned."""
    saved = settings.value(key, default)
    try:
        size = float(saved)  # "20.0" is 20 too
        size = int(size) if size.is_integer() else -1
    except (TypeError, ValueError, OverflowError):
        size = -1
    if allowed[0] <= size <= allowed[1]:
        return size
    low, high = allowed
    _ignore(ignored, key, "ignoring saved %s %r: use %d to %d pixels", key, saved, low, high)
    return default


def _ignore(ignored: dict[str, str], key: str, message: str, *args) -> None:
    """Warn about an unusable saved setting and note its key with the warning, so the
    default replaces it in the file (else the same warning would come at every start) and
    the window can say so."""
    log.warning(message, *args)
    ignored[key] = message % args


def _as_source(saved: str, default: str, ignored: dict[str, str]) -> str:
    """A saved source; a camera index no camera can have (a hand-edited -1) is warned about,
    its key added to ``ignored``, and the default returned: the window's Camera field cannot
    show it, and it would be warned about at every start."""
    if describe(saved) == "camera" and not 0 <= int(saved) <= MAX_CAMERA_INDEX:
        said = "ignoring saved source %r: camera indices run from 0 to %d"
        _ignore(ignored, "source", said, saved, MAX_CAMERA_INDEX)
        return default
    return saved


def _as_text(settings: QSettings, key: str, default: str = "") -> str:
    """A saved text. An ini file splits a hand-typed, unquoted ``a,b.mp4`` into a list, so
    such a value is read back as typed, from the file's own line."""
    value = settings.value(key)
    if isinstance(value, (list, tuple)):
        value = _typed_line(settings.fileName(), key) or ",".join(map(str, value))
    return str(value or default)


def _typed_line(path: str, key: str) -> str | None:
    """The text after '=' of ``key`` (``section/name``, or ``name`` in [General]) in the ini
    file at ``path``, as typed; None when it cannot be read."""
    section, _, name = key.rpartition("/")
    section, current, found = section or "General", None, None
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in map(str.strip, lines):
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        left, eq, right = line.partition("=")
        if eq and current == section and left.strip() == name:
            found = right.strip()
    return found


@dataclass
class Preferences:
    """Every setting the user can change in the window, with its default."""

    alerts_dir: Path
    snapshots_dir: Path
    recordings_dir: Path
    exports_dir: Path
    source: str = "0"
    model: str = "student"
    device: str = "auto"
    loop: bool = False
    alert_delay_s: float = DEFAULT_DELAY_S
    alert_sound: bool = False
    sensitivity: str = "standard"
    min_face_size: int = DetectorConfig.min_face_size
    near_faces: bool = DetectorConfig.near_face > 0  # the stock pass for close-up faces
    near_face_size: int = DetectorConfig.near_face  # ... and the face size it looks from
    # The settings as last read or written: ``save`` writes only what changed since, so two
    # windows sharing one settings file do not undo each other's choices.
    _stored: dict = field(default_factory=dict, repr=False, compare=False)
    # What load found unusable, as warned ("ignoring saved model 'Teacher': ...").
    _ignored: list = field(default_factory=list, repr=False, compare=False)
    # Saved folders that load found to be files, by field name; kept, as the file may move.
    _files: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def defaults(cls, temporary: bool = False) -> Preferences:
        return cls(**(temporary_folders() if temporary else user_folders()))

    @classmethod
    def load(cls, settings: QSettings) -> Preferences:
        """Read the settings, keeping the default for anything missing or unusable."""
        prefs = cls.defaults()
        ignored: dict[str, str] = {}
        for name in FOLDER_FIELDS:
            value = _as_text(settings, f"folders/{name}")
            if not value:
                continue
            # A hand-edited file may say ~/alerts; os.path leaves ~nosuchuser as it is (Path raises)
            folder = Path(os.path.expanduser(str(value)))
            if folder.is_absolute():
                setattr(prefs, name, folder)
                if folder.exists() and not folder.is_dir():  # kept: it may be moved away
                    log.warning(
                        "saved %s %s is a file, not a folder; choose another in the window",
                        name.replace("_dir", " folder"),
                        folder,
                    )
                    prefs._files[name] = folder
            else:  # it would move with the folder the window is started from
                key = f"folders/{name}"
                said = "ignoring saved %s %r: not a full path"
                _ignore(ignored, key, said, name.replace("_dir", " folder"), str(value))
        prefs.source = _as_source(_as_text(settings, "source", prefs.source), prefs.source, ignored)
        model = str(settings.value("model", prefs.model))
        if model in MODEL_NAMES:
            prefs.model = model
        else:
            _ignore(ignored, "model", "ignoring saved model %r: use student or teacher", model)
        prefs.device = _as_text(settings, "device", prefs.device)
        prefs.loop = _as_bool(settings.value("loop", prefs.loop), "loop", prefs.loop, ignored)
        sound = settings.value("alerts/sound", prefs.alert_sound)
        prefs.alert_sound = _as_bool(sound, "alerts/sound", prefs.alert_sound, ignored)
        try:
            delay = float(settings.value("alerts/delay_s", prefs.alert_delay_s))
        except (TypeError, ValueError):
            delay = -1.0
        if 0 <= delay <= MAX_ALERT_DELAY_S:
            prefs.alert_delay_s = delay
        else:
            saved = settings.value("alerts/delay_s")
            _ignore(ignored, "alerts/delay_s", "ignoring saved alert delay %r", saved)
        prefs._load_detector(settings, ignored)
        # What was ignored counts as not stored: the next save puts the default there.
        stored = prefs._entries()
        prefs._stored = {key: value for key, value in stored.items() if key not in ignored}
        prefs._ignored = list(ignored.values())
        return prefs

    @property
    def ignored(self) -> list[str]:
        """The unusable saved settings load found, each as warned."""
        return list(self._ignored)

    @property
    def folders_that_are_files(self) -> dict[str, Path]:
        """Saved folders (by field name) that load found to be files, kept as saved."""
        return dict(self._files)

    @property
    def mended(self) -> bool:
        """Whether some saved settings were unusable and their defaults are not yet saved."""
        return self._stored.keys() != self._entries().keys()

    def _load_detector(self, settings: QSettings, ignored: dict[str, str]) -> None:
        sensitivity = str(settings.value("detector/sensitivity", self.sensitivity))
        if sensitivity in SENSITIVITY:
            self.sensitivity = sensitivity
        else:
            key = "detector/sensitivity"
            _ignore(ignored, key, "ignoring saved detector sensitivity %r", sensitivity)
        self.min_face_size = _as_size(
            settings, "detector/min_face_size", self.min_face_size, MIN_FACE_RANGE, ignored
        )
        near = settings.value("detector/near_faces", self.near_faces)
        self.near_faces = _as_bool(near, "detector/near_faces", self.near_faces, ignored)
        self.near_face_size = _as_size(
            settings, "detector/near_face_size", self.near_face_size, NEAR_FACE_RANGE, ignored
        )

    def save(self, settings: QSettings) -> str | None:
        """Write the preferences; the reason when they could not be kept, else None."""
        entries = self._entries()
        # Qt keeps the first error a QSettings meets for good: after one, a fresh QSettings
        # writes, so a file that can be written again is seen to be.
        if settings.status() != QSettings.Status.NoError:
            settings = QSettings(settings.fileName(), settings.format())
        for key, value in entries.items():
            if key not in self._stored or self._stored[key] != value:
                settings.setValue(key, value)
        settings.sync()
        problem = save_problem(settings)
        if problem is None:  # else the next save tries every change since the last one kept
            self._stored = entries
        if problem is None and shown_source(self.source) != self.source:
            keep_private(Path(settings.fileName()))
        return problem

    def _entries(self) -> dict:
        """Every setting under its key in the settings file."""
        entries = {f"folders/{name}": str(getattr(self, name)) for name in FOLDER_FIELDS}
        entries.update(
            {
                "source": self.source,
                "model": self.model,
                "device": self.device,
                "loop": self.loop,
                "alerts/delay_s": float(self.alert_delay_s),
                "alerts/sound": self.alert_sound,
                "detector/sensitivity": self.sensitivity,
                "detector/min_face_size": int(self.min_face_size),
                "detector/near_faces": self.near_faces,
                "detector/near_face_size": int(self.near_face_size),
            }
        )
        return entries

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
