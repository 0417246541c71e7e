"""Soak test of the window: play a file in a loop for a long time, sample memory and latency.

``.venv/bin/python scripts/soak.py --minutes 30 --csv soak.csv`` runs the real window
(offscreen unless QT_QPA_PLATFORM says otherwise) and prints whether memory stayed flat and
latency did not grow: resident memory after warm-up vs at the end, its slope, and the mean
glass-to-box latency of the first and last tenth of the run.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAT_MB_PER_MIN = 1.0  # steady-state growth below this per minute counts as flat
FLAT_MB_TOTAL = 50.0
LATENCY_GROWTH = 1.5  # the last tenth may be this much slower than the first, plus slack
LATENCY_SLACK_MS = 20.0
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.atomic import check_writable, write_text  # noqa: E402
from app.config import PipelineConfig  # noqa: E402
from app.window import MainWindow  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--source", default=str(ROOT.parent / "shared/data/videos/masked-woman-laptop.mp4")
    )
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--warmup-s", type=float, default=60.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--csv", type=Path)
    args = p.parse_args()
    if args.csv:
        check_writable(args.csv, overwrite=False)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(PipelineConfig(device=args.device), {}, args.source, autostart=False)
    window.loop_check.setChecked(True)
    window.show()
    latencies: list[float] = []
    rows: list[dict] = []
    start = time.perf_counter()
    shown = [0]

    def on_frame(_image, stats) -> None:
        shown[0] += 1
        latencies.append(stats.latency_ms)

    def sample() -> None:
        elapsed = time.perf_counter() - start
        batch = latencies[:]
        latencies.clear()
        rows.append(
            {
                "elapsed_s": round(elapsed, 1),
                "rss_mb": round(rss_mb(), 1),
                "frames": shown[0],
                "display_fps": round(window.display_fps, 2),
                "latency_ms": round(sum(batch) / len(batch), 1) if batch else "",
            }
        )
        if elapsed >= args.minutes * 60:
            window.close()
            app.quit()

    window.frame_displayed.connect(on_frame)
    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(int(args.sample_s * 1000))
    QTimer.singleShot(0, window.start)
    app.exec()

    if args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text(args.csv, buffer.getvalue())
    steady = [r for r in rows if r["elapsed_s"] >= args.warmup_s] or rows
    tenth = max(1, len(steady) // 10)
    lat = [r["latency_ms"] for r in steady if r["latency_ms"] != ""]
    first = sum(lat[:tenth]) / len(lat[:tenth]) if lat else float("nan")
    last = sum(lat[-tenth:]) / len(lat[-tenth:]) if lat else float("nan")
    mb_per_min = slope([r["elapsed_s"] / 60 for r in steady], [r["rss_mb"] for r in steady])
    print(f"ran {rows[-1]['elapsed_s'] / 60:.1f} min, {rows[-1]['frames']} frames shown")
    print(
        f"memory after warm-up {steady[0]['rss_mb']:.0f} MB, at the end "
        f"{steady[-1]['rss_mb']:.0f} MB, slope {mb_per_min:+.2f} MB/min"
    )
    print(f"latency first tenth {first:.0f} ms, last tenth {last:.0f} ms")
    growth = steady[-1]["rss_mb"] - steady[0]["rss_mb"]
    flat = abs(mb_per_min) < FLAT_MB_PER_MIN and growth < FLAT_MB_TOTAL
    steady_latency = last <= first * LATENCY_GROWTH + LATENCY_SLACK_MS
    print(
        f"verdict: memory {'flat' if flat else 'GROWING'}, latency "
        f"{'not growing' if steady_latency else 'GROWING'}"
    )
    if len(rows) * args.sample_s < args.warmup_s:
        print("note: the run was shorter than the warm-up; figures include start-up")
    return 0 if flat and steady_latency else 1


if __name__ == "__main__":
    sys.exit(main())
