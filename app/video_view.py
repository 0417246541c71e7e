"""The window's video area: the newest annotated frame, scaled to fit, or a line of text
while there is none."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class VideoView(QLabel):
    """Shows the newest annotated frame scaled to fit, keeping its aspect ratio."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image: QImage | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Small enough that banner, video and statistics fit a 600-pixel-high screen; a
        # taller minimum made Qt lay the video over the statistics' title there.
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: #111; color: #ccc; font-size: 15px;")
        self.show_placeholder("No video yet. Pick a source and press Start.")

    def show_placeholder(self, text: str) -> None:
        self._image = None
        self.clear()
        self.setText(text)

    def show_image(self, image: QImage) -> None:
        self._image = image
        self._rescale()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image is None:
            return
        pixmap = QPixmap.fromImage(self._image).scaled(
            self.size(),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.setPixmap(pixmap)
