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


def test_benchmark_and_clip_evaluation_refuse_what_would_measure_nothing(tmp_path, capsys):
    from app.benchmark import main as benchmark
    from training.evaluate_clips import main as evaluate_clips

    missing = tmp_path / "nowhere"
    for argv, message in (
        (["--videos", str(missing)], "is not a folder (or add --skip-clips)"),
        (["--videos", str(tmp_path)], "holds no .mp4 clips"),
        (["--videos", str(tmp_path), "--clips", "gone.mp4"], "clip gone.mp4 is not in"),
        (["--skip-clips", "--repeats", "0"], "--max-frames and --repeats must be at least 1"),
        (["--skip-clips", "--camera-fps", "0"], "--camera-fps must be a number above 0"),
    ):
        assert benchmark(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    for argv, message in (
        (["--videos", str(missing)], "is not a folder of clips"),
        (["--videos", str(tmp_path)], "holds none of the expected clips"),
    ):
        assert evaluate_clips(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    junk = tmp_path / "clips"
    junk.mkdir()
    (junk / "masked-woman-laptop.mp4").write_bytes(b"not a video")
    assert evaluate_clips(["--videos", str(junk), "--detect-every", "0"]) == 2
    assert "--detect-every and --smooth must be at least 1" in capsys.readouterr().err
    assert evaluate_clips(["--videos", str(junk), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "skipping masked-woman-laptop.mp4: " in err and "no clip in" in err


def test_window_refuses_headless_only_flags(capsys):
    from app.cli import main

    assert main(["--source", "clip.mp4", "--events", "e.jsonl", "--max-frames", "3"]) == 2
    assert "--events --max-frames only work with --headless" in capsys.readouterr().err
