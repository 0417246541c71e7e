"""Soak test of the window: play a file in a loop for a long time, sample memory and latency.

``.venv/bin/python scripts/soak.py --minutes 30 --csv soak.csv`` runs the real window
(offscreen unless QT_QPA_PLATFORM says otherwise) and prints whether memory stayed flat and
latency did not grow: resident memory after warm-up vs at the end, its slope, and the mean
glass-to-box latency of the first and last tenth of the run.

Other programs on the same cores slow the window for as long as they run, which would read as
growing latency. Each sample therefore records how many cores other programs kept busy
(``other_cores``, from /proc), and the latency verdict compares only samples where that stayed
under half a core; the figures over all samples are printed beside it.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared/data/videos/masked-woman-laptop.mp4"
PROG = "soak.py"
POLL_MS = 200  # how often the run looks for Ctrl-C and for playback that stopped
FLAT_MB_PER_MIN = 1.0  # steady-state growth below this per minute counts as flat
FLAT_MB_TOTAL = 50.0
# A memory slope over a shorter steady stretch than this is caches filling, not a leak: a
# 70 s stretch read +4 MB/min where a 30-minute run of the same window reads +0.1.
MIN_MEMORY_S = 300.0
LATENCY_GROWTH = 1.5  # the last tenth may be this much slower than the first, plus slack
LATENCY_SLACK_MS = 20.0
MIN_FAIR_SAMPLES = 10  # fewer fair samples than this give no latency verdict
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer, qInstallMessageHandler  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.atomic import check_writable, describe_error, write_text  # noqa: E402
from app.config import PipelineConfig  # noqa: E402
from app.console import counted  # noqa: E402
from app.cpu_load import BUSY_CORES, cpu_seconds  # noqa: E402
from app.device import DeviceError, resolve_device  # noqa: E402
from app.flags import FlagValueError, OneLineParser, device, named, output_file  # noqa: E402
from app.preferences import temporary_folders  # noqa: E402
from app.stop_signals import stop_signals_call, stop_words  # noqa: E402
from app.window import MainWindow  # noqa: E402
from app.wording import logged_as  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def latency_figures(steady: list[dict]) -> tuple[list[str], bool | None]:
    """Lines comparing the latency of the first and last tenth of ``steady``, and whether it
    did not grow (None: too few samples free of other programs' load to say)."""
    timed = [r for r in steady if r["latency_ms"] != ""]
    fair = [r for r in timed if not r["other_cores"] > BUSY_CORES]  # nan counts as fair

    def ends(rows: list[dict]) -> tuple[float, float]:
        tenth = max(1, len(rows) // 10)
        lat = [r["latency_ms"] for r in rows]
        return mean(lat[:tenth]), mean(lat[-tenth:])

    first, last = ends(timed)
    lines = [f"latency first tenth {first:.0f} ms, last tenth {last:.0f} ms (all samples)"]
    if len(fair) < MIN_FAIR_SAMPLES:
        lines.append(
            f"only {len(fair)} of {len(timed)} samples had the cores free (other programs "
            f"under {BUSY_CORES:g} core): too few to judge latency"
        )
        return lines, None
    first, last = ends(fair)
    lines.append(
        f"latency first tenth {first:.0f} ms, last tenth {last:.0f} ms over the {len(fair)} of "
        f"{len(timed)} samples where other programs used under {BUSY_CORES:g} core"
    )
    return lines, last <= first * LATENCY_GROWTH + LATENCY_SLACK_MS


def memory_figures(steady: list[dict]) -> tuple[list[str], bool | None]:
    """A line on memory over ``steady`` and whether it stayed flat (None: the stretch after
    the warm-up is too short to tell a leak from caches filling)."""
    mb_per_min = slope([r["elapsed_s"] / 60 for r in steady], [r["rss_mb"] for r in steady])
    lines = [
        f"memory after warm-up {steady[0]['rss_mb']:.0f} MB, at the end "
        f"{steady[-1]['rss_mb']:.0f} MB, slope {mb_per_min:+.2f} MB/min"
    ]
    span = steady[-1]["elapsed_s"] - steady[0]["elapsed_s"]
    if span < MIN_MEMORY_S:
        lines.append(
            f"only {span:.0f} s after the warm-up: too short to judge memory "
            f"(it takes {MIN_MEMORY_S / 60:g} minutes)"
        )
        return lines, None
    growth = steady[-1]["rss_mb"] - steady[0]["rss_mb"]
    return lines, abs(mb_per_min) < FLAT_MB_PER_MIN and growth < FLAT_MB_TOTAL


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def first_sentence(message: str) -> str:
    """The window's message up to its advice for a window user ("Pick another source...")."""
    return message.split(". ")[0].rstrip(".")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__)
    p.add_argument(
        "--source",
        type=named("a video file, a camera index or a stream URL"),
        default=str(DEFAULT_SOURCE),
        help="video file played in a loop, or a camera index or stream URL "
        "(default: a clip of ../shared/data/videos beside the checkout)",
    )
    p.add_argument("--minutes", type=float, default=30.0, help="how long to play (default 30)")
    p.add_argument(
        "--sample-s",
        type=float,
        default=10.0,
        help="seconds between memory and latency samples (default 10)",
    )
    p.add_argument(
        "--warmup-s",
        type=float,
        default=60.0,
        help="seconds left out of the verdict while caches and models settle (default 60)",
    )
    p.add_argument("--device", default="cpu", type=device, help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--csv", type=output_file, help="write every sample here as CSV")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --csv")
    return p


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse, before the window opens, settings that would never end or measure nothing,
    and a --csv that would replace an earlier run's without --overwrite."""
    if args.csv:
        check_writable(args.csv, overwrite=args.overwrite)
    for flag, value in (("--minutes", args.minutes), ("--sample-s", args.sample_s)):
        if not (value > 0 and math.isfinite(value)):
            raise FlagValueError(f"{flag} must be a finite number above 0, got {value}")
    if args.sample_s > args.minutes * 60:
        raise FlagValueError(
            f"--sample-s {args.sample_s:g} is longer than the run ({args.minutes:g} min)"
        )
    if not (args.warmup_s >= 0 and math.isfinite(args.warmup_s)):
        raise FlagValueError(
            f"--warmup-s must be a finite number of at least 0, got {args.warmup_s}"
        )
    resolve_device(args.device)
    if not (args.source.isdigit() or "://" in args.source) and not Path(args.source).is_file():
        if args.source == str(DEFAULT_SOURCE):
            raise FileNotFoundError(
                f"the default clip {DEFAULT_SOURCE} is not there (this checkout is not beside "
                "shared/); pass --source FILE"
            )
        found = "is not a video file" if Path(args.source).exists() else "not found"
        raise FileNotFoundError(f"--source {args.source} {found}")


# Qt's offscreen platform says this each time a window is shown; it is no fault of the window.
OFFSCREEN_NOTE = "This plugin does not support propagateSizeHints()"


def _without_offscreen_note(_mode, _context, message: str) -> None:
    """Qt's messages on standard error, as Qt writes them, except OFFSCREEN_NOTE."""
    if message != OFFSCREEN_NOTE:
        sys.stderr.write(message + "\n")


class Played(NamedTuple):
    """What one run of the window gave: its samples, the frames it showed, and the window's
    message when playback stopped on a failure (None when it played to the end)."""

    rows: list[dict]
    shown: int
    failure: str | None


def end_loop(app: QApplication) -> None:
    """Ask Qt's event loop to end; a request made before the loop runs would be lost on
    quit(), so it is made again from inside the loop, once it starts."""
    app.quit()
    QTimer.singleShot(0, app.quit)


def play(app: QApplication, args: argparse.Namespace) -> Played:
    """Play ``args.source`` in a loop in the window until ``args.minutes`` have passed, the
    playback fails or ``end_loop`` is called; sample memory and latency on the way."""
    window = MainWindow(PipelineConfig(device=args.device), {}, args.source, autostart=False)
    window.loop_check.setChecked(True)
    # The window logs each message it shows; a failure is said once by main, in this
    # script's words, so its copy (which tells a window user to press Start) is left out.
    logging.getLogger("app.window").addFilter(
        lambda record: record.getMessage() != logged_as(window.message_label.text())
    )
    window.show()
    latencies: list[float] = []
    rows: list[dict] = []
    start = time.perf_counter()
    shown = [0]
    failure: list[str] = []

    def on_frame(_image, stats) -> None:
        shown[0] += 1
        latencies.append(stats.latency_ms)

    used = [cpu_seconds()]

    def sample() -> None:
        elapsed = time.perf_counter() - start
        batch = latencies[:]
        latencies.clear()
        (machine, own), (machine_before, own_before) = cpu_seconds(), used[0]
        used[0] = (machine, own)
        since = elapsed - (rows[-1]["elapsed_s"] if rows else 0.0)
        other = max(0.0, (machine - machine_before) - (own - own_before)) / max(since, 1e-3)
        rows.append(
            {
                "elapsed_s": round(elapsed, 1),
                "rss_mb": round(rss_mb(), 1),
                "frames": shown[0],
                "display_fps": round(window.display_fps, 2),
                "latency_ms": round(sum(batch) / len(batch), 1) if batch else "",
                "other_cores": round(other, 2),
            }
        )
        if elapsed >= args.minutes * 60:
            end_loop(app)

    def poll() -> None:
        """Playback of a looped source only stops on a failure, which the window reports."""
        if window.message and not window.is_playing:
            failure.append(window.message.split("\n")[0])
            end_loop(app)

    window.frame_displayed.connect(on_frame)
    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(int(args.sample_s * 1000))
    watch = QTimer()  # also lets Python see Ctrl-C and the other stop signals in Qt's loop
    watch.timeout.connect(poll)
    watch.start(POLL_MS)
    QTimer.singleShot(0, window.start)
    print(f"playing {args.source} in a loop for {args.minutes:g} min (Ctrl-C stops)", flush=True)
    app.exec()
    timer.stop()
    watch.stop()
    window.close()
    # The window remembers nothing here: its alerts went to a temporary folder of this run's
    # own, which no one will look at (the soak measures; it keeps no alerts).
    own = temporary_folders()["alerts_dir"].parent
    if Path(window.prefs.alerts_dir).parent == own:
        shutil.rmtree(own, ignore_errors=True)
    return Played(rows, shown[0], failure[0] if failure else None)


def report(args: argparse.Namespace, played: Played) -> int:
    """Say how the run went, write its samples to ``args.csv`` and give the verdict; returns
    the exit status."""
    rows, shown = played.rows, played.shown
    if played.failure is not None:
        reason = first_sentence(played.failure)
        if not shown:
            print(f"{PROG}: error: {reason}; nothing measured", file=sys.stderr)
            return 2
        print(
            f"{PROG}: error: playback stopped after {counted(shown, 'frame')} ({reason}); "
            "nothing was written",
            file=sys.stderr,
        )
        return 1
    if not rows or not rows[-1]["frames"]:
        print(
            f"{PROG}: error: no frame of {args.source} was shown; nothing measured", file=sys.stderr
        )
        return 1
    if args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        try:
            write_text(args.csv, buffer.getvalue(), overwrite=args.overwrite)
        except OSError as exc:
            print(
                f"{PROG}: error: {describe_error(exc)}; the samples were not saved", file=sys.stderr
            )
            return 1
    steady = [r for r in rows if r["elapsed_s"] >= args.warmup_s] or rows
    print(f"ran {rows[-1]['elapsed_s'] / 60:.1f} min, {counted(rows[-1]['frames'], 'frame')} shown")
    said, flat = memory_figures(steady)
    print("\n".join(said))
    said, steady_latency = latency_figures(steady)
    print("\n".join(said))
    if rows[-1]["elapsed_s"] < args.warmup_s:  # start-up alone would read as growth
        print("verdict: none; the run was shorter than the warm-up, so the figures are start-up")
        return 0
    memory = {True: "flat", False: "GROWING", None: "not judged"}[flat]
    latency = {True: "not growing", False: "GROWING", None: "not judged"}[steady_latency]
    print(f"verdict: memory {memory}, latency {latency}")
    return 3 if False in (flat, steady_latency) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
    except (OSError, ValueError, DeviceError) as exc:
        print(f"{PROG}: error: {describe_error(exc)}", file=sys.stderr)
        return 2

    qInstallMessageHandler(_without_offscreen_note)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    stopped: list[int] = []

    def on_stop(signum: int) -> None:
        """Ctrl-C, SIGTERM and SIGHUP end the run alike: the window closes, its folder goes
        and nothing is written. The first one is the one reported."""
        stopped.append(signum)
        end_loop(app)

    with stop_signals_call(on_stop):
        played = play(app, args)
        if stopped:
            said, status = stop_words(stopped[0])
            print(f"{PROG}: {said}; nothing was written", file=sys.stderr)
            return status
        return report(args, played)


if __name__ == "__main__":
    sys.exit(main())
