"""The window's statistics strip: faces seen, masked shares and a small per-second plot.

The numbers come from ``app.stats.FaceStats``; the plot is painted here with QPainter.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.stats import FaceStats, SecondRow, Tally

PLOT_SPAN_S = 120  # seconds the plot shows at most
PLOT_MIN_SPAN_S = 30  # a shorter session is drawn over this many seconds
NUMBERS_WIDTH = 300
MASKED_COLOUR = QColor(60, 180, 60)
UNMASKED_COLOUR = QColor(230, 40, 40)
AXIS_COLOUR = QColor(150, 150, 150)
TEXT_COLOUR = QColor(90, 90, 90)


def share_text(tally: Tally) -> str:
    share = tally.masked_share
    if share is None:
        return "-"
    return f"{share:.0%} ({tally.masked} of {tally.faces})"


class StatsPlot(QWidget):
    """Stacked bars per second over the last two minutes: masked (green) under unmasked (red)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: list[SecondRow] = []
        self.last_second: int | None = None
        self.span_s = PLOT_MIN_SPAN_S
        self.setMinimumSize(220, 70)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip(
            "Faces per second of video, up to the last two minutes: masked in "
            "green, unmasked in red; a gap is a second in which no frame was "
            "analysed"
        )

    def set_rows(self, rows: list[SecondRow], last_second: int | None) -> None:
        """Show ``rows`` (at most the last PLOT_SPAN_S seconds) ending at ``last_second``."""
        self.rows, self.last_second = rows, last_second
        if rows and last_second is not None:
            covered = last_second - rows[0].time_s + 1
            self.span_s = int(min(PLOT_SPAN_S, max(PLOT_MIN_SPAN_S, covered)))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.fillRect(self.rect(), QColor(250, 250, 250))
        font = painter.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        text_h = painter.fontMetrics().height()
        area = QRectF(4, text_h + 2, self.width() - 8, self.height() - text_h - 6)
        painter.setPen(AXIS_COLOUR)
        painter.drawLine(area.bottomLeft(), area.bottomRight())

        painter.setPen(TEXT_COLOUR)
        if not self.rows or self.last_second is None:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No faces counted yet")
            return
        peak = max(1, max(row.tally.faces for row in self.rows))
        painter.drawText(
            QRectF(4, 0, area.width(), text_h),
            Qt.AlignmentFlag.AlignLeft,
            f"faces per second over the last {self.span_s} s (peak {peak})",
        )
        bar_w = area.width() / self.span_s
        unit = area.height() / peak
        first = self.last_second - self.span_s + 1
        for row in self.rows:
            if row.time_s < first:
                continue
            x = area.left() + (row.time_s - first) * bar_w
            masked_h = row.tally.masked * unit
            unmasked_h = row.tally.unmasked * unit
            width = max(1.0, bar_w - 1)
            painter.fillRect(QRectF(x, area.bottom() - masked_h, width, masked_h), MASKED_COLOUR)
            painter.fillRect(
                QRectF(x, area.bottom() - masked_h - unmasked_h, width, unmasked_h), UNMASKED_COLOUR
            )


class StatsPanel(QGroupBox):
    """Faces seen, masked share over the last minute and the session, the plot, and export."""

    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Statistics", parent)
        self.faces_label = QLabel("0")
        self.minute_label = QLabel("-")
        self.session_label = QLabel("-")
        for label in (self.faces_label, self.minute_label, self.session_label):
            label.setStyleSheet("font-weight: bold;")
        form = QFormLayout()
        self.faces_label.setToolTip(
            "Distinct faces (tracks) this session, each counted by the label most of its frames had"
        )
        form.addRow("Faces seen:", self.faces_label)
        form.addRow("Masked, last minute:", self.minute_label)
        form.addRow("Masked, session:", self.session_label)

        self.plot = StatsPlot()
        self.export_button = QPushButton("Export CSV...")
        self.export_button.setToolTip("Save the per-second statistics as CSV (Ctrl+E)")
        self.export_button.clicked.connect(self.export_requested)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addStretch(1)
        side.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignLeft)

        numbers = QWidget()  # a fixed width, so the plot does not jump as the numbers grow
        numbers.setFixedWidth(NUMBERS_WIDTH)
        numbers.setLayout(side)
        side.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout(self)
        row.addWidget(numbers)
        row.addWidget(self.plot, 1)
        self.setFixedHeight(130)

    def refresh(self, stats: FaceStats) -> None:
        summary = stats.summary()
        session = summary.session
        self.faces_label.setText(str(session.faces))
        self.minute_label.setText(share_text(summary.last_minute))
        self.session_label.setText(share_text(session))
        last = int(stats.last_s // 1) if stats.last_s is not None else None
        self.plot.set_rows(stats.series(PLOT_SPAN_S), last)
