"""The window's source picker: a camera index, a video file chosen with a dialog, or a URL."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from app.source import (
    CLIP_SUFFIXES,
    MAX_CAMERA_INDEX,
    STREAM_PREFIXES,
    describe,
    is_utf8,
    shown_name,
)

VIDEO_FILTER = f"Videos ({' '.join('*' + s for s in CLIP_SUFFIXES)});;All files (*)"


class SourcePicker(QGroupBox):
    """Three ways to name a source; ``spec()`` turns the chosen one into a VideoSource spec."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Source", parent)
        self.camera_radio = QRadioButton("Camera")
        self.file_radio = QRadioButton("File")
        self.url_radio = QRadioButton("URL")
        self._group = QButtonGroup(self)
        for radio in (self.camera_radio, self.file_radio, self.url_radio):
            self._group.addButton(radio)
        self.camera_radio.setChecked(True)

        self.camera_spin = QSpinBox()
        self.camera_spin.setRange(0, MAX_CAMERA_INDEX)
        self.camera_spin.setToolTip("Camera index as the system numbers it (0 is the first)")
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("no file chosen")
        self.open_button = QPushButton("Open file...")
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("rtsp://, http://, ...")

        layout = QGridLayout(self)
        layout.addWidget(self.camera_radio, 0, 0)
        layout.addWidget(self.camera_spin, 0, 1, 1, 2)
        layout.addWidget(self.file_radio, 1, 0)
        layout.addWidget(self.file_edit, 1, 1)
        layout.addWidget(self.open_button, 1, 2)
        layout.addWidget(self.url_radio, 2, 0)
        layout.addWidget(self.url_edit, 2, 1, 1, 2)
        layout.setColumnStretch(1, 1)

        self.camera_spin.valueChanged.connect(lambda _: self.camera_radio.setChecked(True))
        self.file_edit.textEdited.connect(lambda _: self.file_radio.setChecked(True))
        self.url_edit.textEdited.connect(lambda _: self.url_radio.setChecked(True))
        self.file_edit.textChanged.connect(self.file_edit.setToolTip)
        self.open_button.clicked.connect(self.open_file_dialog)
        # A file name given on the command line that Qt cannot hold (bytes that are not
        # UTF-8 would be dropped, naming another file); kept to say so until a new choice.
        self._refused: str | None = None
        self.file_edit.textChanged.connect(self._forget_refused)
        # A camera index given that the spin box cannot show (-1, 10**20): kept as given, so
        # that no other camera opens in its place, until another index is picked.
        self._bad_camera: str | None = None
        self.camera_spin.valueChanged.connect(self._forget_bad_camera)

    def spec(self) -> str:
        """The chosen source as VideoSource takes it (may be empty when nothing was given)."""
        if self.camera_radio.isChecked():
            return self._bad_camera or str(self.camera_spin.value())
        if self.file_radio.isChecked():
            text = self.file_edit.text()
            # Spaces around a pasted name are dropped, unless they belong to a real file's name.
            real = text.strip() and os.path.exists(os.path.expanduser(text))  # never raises
            if real:
                return text
            text = text.strip()
            # "Copy as path" quotes the name: the quotes go when the file is found without them.
            if len(text) > 2 and text[0] == text[-1] and text[0] in "'\"":
                if os.path.exists(os.path.expanduser(text[1:-1])):
                    return text[1:-1]
            return text
        return self.url_edit.text().strip()

    def problem(self) -> str | None:
        """A sentence saying why the current choice cannot be played, or None."""
        spec = self.spec()
        if self.camera_radio.isChecked() and self._bad_camera is not None:
            return (
                f"There is no camera index {self._bad_camera}: indices run from 0 to "
                f"{MAX_CAMERA_INDEX}. Pick a camera, a file or a stream."
            )
        if self.file_radio.isChecked() and not spec and self._refused is not None:
            return (
                f"The file name {shown_name(self._refused)} is not valid UTF-8, so it cannot be "
                'opened; rename the file, then choose it with "Open file...".'
            )
        if self.file_radio.isChecked() and not spec:
            return 'Choose a video file with "Open file..." first.'
        if self.url_radio.isChecked():
            if not spec:
                return "Type a stream URL first."
            if describe(spec) != "stream":
                schemes = ", ".join(STREAM_PREFIXES)
                return f"{spec} is not a stream URL; it should start with one of {schemes}"
        return None

    def set_spec(self, spec: str) -> None:
        """Show ``spec`` (as given on the command line) in the matching field."""
        if not is_utf8(spec):
            self.file_edit.clear()
            self.file_radio.setChecked(True)
            self._refused = spec
            return
        kind = describe(spec)
        if kind == "camera":
            index = int(spec)
            in_range = 0 <= index <= MAX_CAMERA_INDEX
            self.camera_spin.setValue(index if in_range else 0)
            self._bad_camera = None if in_range else spec
            self.camera_radio.setChecked(True)
        elif kind == "stream":
            self.url_edit.setText(spec)
            self.url_radio.setChecked(True)
        else:
            self.file_edit.setText(spec)
            self.file_radio.setChecked(True)

    def _forget_bad_camera(self, _index: int) -> None:
        self._bad_camera = None

    def _forget_refused(self, text: str) -> None:
        if text:
            self._refused = None

    def offer_file(self) -> None:
        """Switch to the file choice and put the focus on "Open file..."."""
        self.file_radio.setChecked(True)
        self.open_button.setFocus()

    def open_file_dialog(self) -> None:
        if path := self.choose_file(self):
            self.use_file(path)

    def choose_file(self, parent: QWidget) -> str | None:
        """A video file picked in a dialog over ``parent``, starting in the folder of the file
        named now; None when the user cancels."""
        current = Path(os.path.expanduser(self.file_edit.text().strip() or "."))
        try:
            folder = str(current.parent if current.is_file() else current)
        except OSError:  # a name too long to look up: start where it points
            folder = str(current.parent)
        path, _ = QFileDialog.getOpenFileName(parent, "Open video", folder, VIDEO_FILTER)
        return path or None

    def use_file(self, path: str) -> None:
        """Make ``path`` the chosen source."""
        self.file_edit.setText(path)
        self.file_radio.setChecked(True)
