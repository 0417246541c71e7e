"""The window's "Alerts & files" tab: alert delay, alert sound and the output folders."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QToolButton, QVBoxLayout, QWidget)

from app.preferences import MAX_ALERT_DELAY_S, Preferences

FOLDER_TITLES = {"alerts_dir": "Alerts", "snapshots_dir": "Snapshots",
                 "recordings_dir": "Recordings"}


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
        self.edit.setText(str(path))
        self.edit.setToolTip(str(path))
        self.edit.setCursorPosition(0)

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
