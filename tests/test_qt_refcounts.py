"""Guard against Qt bindings that leak references to None, True or False.

PySide6 6.12.0 under Python 3.11 (where None is not immortal) lowered None's reference count
on every call of a method returning nothing, and True's or False's on every signal emit;
the window then died after some minutes of playback with "deallocating None". These calls
are the ones the window makes for every frame.
"""

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QObject, QRectF, Signal  # noqa: E402
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap  # noqa: E402
from PySide6.QtWidgets import QLabel  # noqa: E402

CALLS = 2000


class Emitter(QObject):
    frame = Signal(object)


def test_per_frame_qt_calls_keep_singleton_references(qapp):
    label = QLabel()
    image = QImage(64, 48, QImage.Format.Format_RGB32)
    emitter = Emitter()
    emitter.frame.connect(lambda value: None)
    painter = QPainter(image)
    calls = {
        "setText": lambda: label.setText("12.5"),
        "setPixmap": lambda: label.setPixmap(QPixmap.fromImage(image)),
        "update": label.update,
        "emit": lambda: emitter.frame.emit(1),
        "fillRect": lambda: painter.fillRect(QRectF(0, 0, 4, 4), QColor(10, 200, 10)),
    }
    try:
        for name, call in calls.items():
            before = [sys.getrefcount(x) for x in (None, True, False)]
            for _ in range(CALLS):
                call()
            after = [sys.getrefcount(x) for x in (None, True, False)]
            lost = [b - a for b, a in zip(before, after)]
            assert max(lost) < CALLS // 2, f"{name} leaks references: {lost}"
    finally:
        painter.end()
