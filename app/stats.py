"""Mask statistics of a session: faces seen, masked share and a per-second time series.

Faces are counted as people, not as detections: every track is one face, labelled by the
majority of its frames. ``FaceStats`` is fed every processed frame with its media time; the
window shows its summary and plot, headless mode writes its series as CSV. Qt-free.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from app.atomic import check_writable, write_text

MASKED = "mask"
WINDOW_S = 60.0
CSV_COLUMNS = ("time_s", "faces", "masked", "unmasked", "masked_share")


def is_masked(votes: Counter) -> bool:
    """Majority label of one face's frames; a tie counts as unmasked (the cautious answer)."""
    masked = votes[MASKED]
    return masked > sum(votes.values()) - masked


@dataclass(frozen=True)
class Tally:
    """Faces counted over some span: how many, and how many of them were masked."""

    faces: int
    masked: int

    @property
    def unmasked(self) -> int:
        return self.faces - self.masked

    @property
    def masked_share(self) -> float | None:
        """Masked faces over all faces, or None when there were none."""
        return self.masked / self.faces if self.faces else None


@dataclass(frozen=True)
class SecondRow:
    """One second of the time series: faces seen in it, by their label within that second."""

    time_s: int
    tally: Tally


@dataclass(frozen=True)
class StatsSummary:
    session: Tally  # every face of the session, by its label over the whole session
    last_minute: Tally  # faces seen in the last 60 s of media time, by their label there


def tally(faces: dict) -> Tally:
    return Tally(len(faces), sum(is_masked(votes) for votes in faces.values()))


class FaceStats:
    """Collects labelled faces frame by frame; ask for ``summary`` or ``series`` any time."""

    def __init__(self, window_s: float = WINDOW_S):
        self.window_s = window_s
        self._seconds: dict[int, dict] = {}  # second -> face key -> label votes
        self._session: dict = {}  # face key -> label votes
        self._untracked = itertools.count()
        self.frames = 0
        self.last_s: float | None = None

    def _key(self, face):
        if face.track_id is None:
            return ("untracked", next(self._untracked))
        return ("track", face.track_id)  # the tracker never reuses an id within a session

    def add(self, time_s: float, faces) -> None:
        """Count one frame's faces at media time ``time_s`` (seconds, not decreasing)."""
        second = self._seconds.setdefault(int(time_s // 1), {})
        for face in faces:
            key = self._key(face)
            second.setdefault(key, Counter())[face.label] += 1
            self._session.setdefault(key, Counter())[face.label] += 1
        self.frames += 1
        self.last_s = time_s if self.last_s is None else max(self.last_s, time_s)

    def summary(self) -> StatsSummary:
        recent: dict = {}
        if self.last_s is not None:
            first = int((self.last_s - self.window_s) // 1) + 1
            for second, faces in self._seconds.items():
                if second < first:
                    continue
                for key, votes in faces.items():
                    recent.setdefault(key, Counter()).update(votes)
        return StatsSummary(tally(self._session), tally(recent))

    def series(self, span_s: float | None = None) -> list[SecondRow]:
        """One row per second in which a frame was processed, in time order.

        With ``span_s``, only the seconds within that long before the newest frame.
        """
        first = None
        if span_s is not None and self.last_s is not None:
            first = int((self.last_s - span_s) // 1) + 1
        kept = sorted(second for second in self._seconds if first is None or second >= first)
        return [SecondRow(second, tally(self._seconds[second])) for second in kept]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in self.series():
            share = row.tally.masked_share
            writer.writerow(
                [
                    row.time_s,
                    row.tally.faces,
                    row.tally.masked,
                    row.tally.unmasked,
                    "" if share is None else f"{share:.3f}",
                ]
            )
        return out.getvalue()

    def write_csv(self, path: Path, overwrite: bool = False) -> None:
        """Write the series as CSV under a temporary name and rename it to ``path``."""
        check_writable(Path(path), overwrite)
        write_text(Path(path), self.to_csv(), overwrite)
