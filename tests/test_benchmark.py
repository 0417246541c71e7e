"""The benchmark command runs and writes its tables as JSON (its figures are not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import fixture_bgr, on_canvas, write_video

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_writes_all_tables(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "face.mp4", [on_canvas(fixture_bgr("no_mask_2.jpg"))] * 8, fps=10)
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.benchmark",
            "--videos",
            str(videos),
            "--seconds",
            "0.05",
            "--repeats",
            "1",
            "--max-frames",
            "8",
            "--live-seconds",
            "1",
            "--quiet",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert [r["batch"] for r in result["classifier"] if r["device"] == "cpu"] == [1, 8, 32]
    assert all(r["teacher"] > 0 and r["student"] > 0 for r in result["classifier"])
    settings = {
        (r["weights"], r["sensitivity"], r["scale"], r["min_face"]) for r in result["detector"]
    }
    assert settings >= {
        ("tuned", "standard", 1.0, 20),
        ("tuned", "high", 0.5, 40),
        ("stock", "stock", 1.0, 20),
    }
    assert all(r["faces"] == 0 for r in result["detector"])  # no clip named, a grey frame
    clip = result["clips"][0]
    assert clip["clip"] == "face.mp4" and clip["processed"] == "640x480"
    assert (
        set(clip["naive"])
        == set(clip["default"])
        >= {"processed_fps", "displayed_fps", "latency_ms"}
    )
    assert "Classifier crops/s" in proc.stdout and "End to end" in proc.stdout
