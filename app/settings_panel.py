"""Settings widgets of the window's side panel: the "Alerts & files" tab (alert delay, alert
sound, output folders) and the Live tab's "Detector" group (sensitivity, minimum face size,
the close-up pass).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.config import SENSITIVITY
from app.preferences import MAX_ALERT_DELAY_S, MIN_FACE_RANGE, NEAR_FACE_RANGE, Preferences

FOLDER_TITLES = {
    "alerts_dir": "Alerts",
    "snapshots_dir": "Snapshots",
    "recordings_dir": "Recordings",
}
SENSITIVITY_TITLES = {"standard": "Standard", "high": "High"}
CUSTOM_TITLE = "Custom (command line)"
SENSITIVITY_TIP = "High finds more masked and small faces but may box things that are not faces"
MIN_FACE_TIP = (
    "Smallest face searched for, in pixels of the video frame; smaller values find "
    "faces further away but detection takes longer"
)

NEAR_FACES_TIP = (
    "Also looks for faces of this size and up with MTCNN's stock weights: finds faces close "
    "to the camera that the tuned detector passes over; a third more detector time"
)
NEAR_FACES_STOCK_TIP = "The detector runs on MTCNN's stock weights already"


class FolderField(QWidget):
    """A folder path shown read-only, with a button that picks another folder."""

    changed = Signal(Path)

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        self.edit = QLineEdit()
        self.edit.setReadOnly(True)
        self.button = QToolButton()
        self.button.setText("...")
        self.button.setToolTip(f"Choose the {title.lower()} folder")
        self.button.clicked.connect(self.choose)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.button)

    def path(self) -> Path:
        return Path(self.edit.text())

    def set_path(self, path: Path) -> None:
        """Show ``path`` with its end in sight: a long one loses its start, not the folder's
        own name (the whole path is in the tooltip)."""
        self.edit.setText(str(path))
        self.edit.setToolTip(str(path))
        self.edit.setCursorPosition(len(str(path)))

    def choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"{self.title} folder", self.edit.text())
        if folder:
            self.set_path(Path(folder))
            self.changed.emit(Path(folder))


class SettingsPanel(QWidget):
    """Edits the alert and folder preferences; emits ``changed`` with the field's name."""

    changed = Signal(str)

    def __init__(self, prefs: Preferences, parent: QWidget | None = None):
        super().__init__(parent)
        self.delay_spin = QDoubleSpinBox()
        self.delay_spin.setRange(0.0, MAX_ALERT_DELAY_S)
        self.delay_spin.setDecimals(1)
        self.delay_spin.setSingleStep(0.5)
        self.delay_spin.setSuffix(" s")
        self.delay_spin.setValue(prefs.alert_delay_s)
        self.delay_spin.setToolTip("Alert when a face has been unmasked this long without a break")
        self.sound_check = QCheckBox("Beep on each alert")
        self.sound_check.setChecked(prefs.alert_sound)
        self.alert_status = QLabel("No alerts yet")
        self.alert_status.setWordWrap(True)

        self.folders: dict[str, FolderField] = {}
        form = QFormLayout()
        form.addRow("Alert after:", self.delay_spin)
        form.addRow("", self.sound_check)
        for name, title in FOLDER_TITLES.items():
            field = FolderField(title)
            field.set_path(getattr(prefs, name))
            field.changed.connect(lambda _path, name=name: self.changed.emit(name))
            self.folders[name] = field
            form.addRow(f"{title}:", field)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.alert_status)
        layout.addStretch(1)

        self.delay_spin.valueChanged.connect(lambda _: self.changed.emit("alert_delay_s"))
        self.sound_check.toggled.connect(lambda _: self.changed.emit("alert_sound"))

    def apply_to(self, prefs: Preferences) -> None:
        """Copy what the panel shows into ``prefs``."""
        prefs.alert_delay_s = self.delay_spin.value()
        prefs.alert_sound = self.sound_check.isChecked()
        for name, field in self.folders.items():
            setattr(prefs, name, field.path())


class DetectorSettings(QGroupBox):
    """The "Detector" group: sensitivity preset, minimum face size and the close-up pass.

    ``changed`` carries "sensitivity", "min_face_size", "near_faces" or "near_face_size".
    With ``custom`` the sensitivity box starts on an extra entry for thresholds given on the
    command line; it goes away once the user picks a preset.
    """

    changed = Signal(str)

    def __init__(self, prefs: Preferences, custom: bool = False, parent: QWidget | None = None):
        super().__init__("Detector", parent)
        self.sensitivity_combo = QComboBox()
        for name in SENSITIVITY:
            self.sensitivity_combo.addItem(SENSITIVITY_TITLES.get(name, name.title()), name)
        if custom:
            self.sensitivity_combo.addItem(CUSTOM_TITLE, None)
            self.sensitivity_combo.setCurrentIndex(self.sensitivity_combo.count() - 1)
        else:
            self.sensitivity_combo.setCurrentIndex(
                max(0, self.sensitivity_combo.findData(prefs.sensitivity))
            )
        self.sensitivity_combo.setToolTip(SENSITIVITY_TIP)
        self.min_face_spin = QSpinBox()
        self.min_face_spin.setRange(*MIN_FACE_RANGE)
        self.min_face_spin.setSuffix(" px")
        self.min_face_spin.setValue(prefs.min_face_size)
        self.min_face_spin.setToolTip(MIN_FACE_TIP)
        self.near_check = QCheckBox("Look again from")
        self.near_check.setChecked(prefs.near_faces)
        self.near_spin = QSpinBox()
        self.near_spin.setRange(*NEAR_FACE_RANGE)
        self.near_spin.setSingleStep(10)
        self.near_spin.setSuffix(" px")
        self.near_spin.setValue(prefs.near_face_size)
        self.near_spin.setAccessibleName("Close-up face size")
        self._stock = False
        near_row = QWidget()
        near_layout = QHBoxLayout(near_row)
        near_layout.setContentsMargins(0, 0, 0, 0)
        near_layout.addWidget(self.near_check)
        near_layout.addWidget(self.near_spin)
        near_layout.addStretch(1)

        form = QFormLayout(self)
        form.addRow("Sensitivity:", self.sensitivity_combo)
        form.addRow("Minimum face:", self.min_face_spin)
        form.addRow("Close-up faces:", near_row)
        for widget, tip in (
            (self.sensitivity_combo, SENSITIVITY_TIP),
            (self.min_face_spin, MIN_FACE_TIP),
        ):
            form.labelForField(widget).setToolTip(tip)
        self._near_label = form.labelForField(near_row)
        self._show_near()

        self.sensitivity_combo.currentIndexChanged.connect(self._on_sensitivity)
        self.min_face_spin.valueChanged.connect(lambda _: self.changed.emit("min_face_size"))
        self.near_check.toggled.connect(self._on_near_toggled)
        self.near_spin.valueChanged.connect(lambda _: self.changed.emit("near_face_size"))

    def set_stock(self, stock: bool) -> None:
        """Grey out the close-up pass when the detector runs on stock weights (it would be
        the same nets twice); the box keeps its tick and size for a later run with tuned
        ones."""
        self._stock = stock
        self._show_near()

    def _on_near_toggled(self, _checked: bool) -> None:
        self._show_near()
        self.changed.emit("near_faces")

    def _show_near(self) -> None:
        """The close-up row's state: the size can be changed only while the pass is on."""
        tip = NEAR_FACES_STOCK_TIP if self._stock else NEAR_FACES_TIP
        self.near_check.setEnabled(not self._stock)
        self.near_spin.setEnabled(not self._stock and self.near_check.isChecked())
        for widget in (self.near_check, self.near_spin, self._near_label):
            widget.setToolTip(tip)

    def sensitivity(self) -> str | None:
        """The chosen preset, or None while the command line's thresholds are in use."""
        return self.sensitivity_combo.currentData()

    def _on_sensitivity(self, _index: int) -> None:
        custom = self.sensitivity_combo.findData(None)
        if custom >= 0 and self.sensitivity() is not None:
            self.sensitivity_combo.blockSignals(True)
            self.sensitivity_combo.removeItem(custom)
            self.sensitivity_combo.blockSignals(False)
        self.changed.emit("sensitivity")

    def apply_to(self, prefs: Preferences) -> None:
        """Copy what the group shows into ``prefs`` (a custom sensitivity keeps the saved one)."""
        if self.sensitivity() is not None:
            prefs.sensitivity = self.sensitivity()
        prefs.min_face_size = self.min_face_spin.value()
        prefs.near_faces = self.near_check.isChecked()
        prefs.near_face_size = self.near_spin.value()
