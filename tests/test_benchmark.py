"""The benchmark command runs and writes its tables as JSON (its figures are not asserted)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import fixture_bgr, on_canvas, shell, write_video

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_writes_all_tables(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    face = [on_canvas(fixture_bgr("no_mask_2.jpg"))] * 8
    write_video(videos / "face.MP4", face, fps=10)  # a phone's upper-case suffix
    (videos / "broken.mp4").write_bytes(b"not a video")  # skipped, not fatal
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
        (r["weights"], r["sensitivity"], r["scale"], r["min_face"], r["near_face"])
        for r in result["detector"]
    }
    assert settings >= {
        ("tuned", "standard", 1.0, 20, 100),
        ("tuned", "standard", 1.0, 20, 0),
        ("tuned", "high", 0.5, 40, 100),
        ("stock", "stock", 1.0, 20, 0),
    }
    # No laptop clip: the detector is timed on the first readable clip's first frame.
    assert result["detector_frame_from"] == "face.MP4"
    standard = [r for r in result["detector"] if r["sensitivity"] == "standard"]
    assert standard and all(r["faces"] == 1 for r in standard)
    assert proc.stderr.count("WARNING app.benchmark: skipped broken.mp4: ") == 1  # said once
    assert [c["clip"] for c in result["clips"]] == ["face.MP4"]
    (skip,) = result["skipped"]
    assert skip["clip"] == "broken.mp4" and "not a video or image OpenCV can read" in skip["reason"]
    clip = result["clips"][0]
    assert clip["clip"] == "face.MP4" and clip["processed"] == "640x480"
    assert (
        set(clip["naive"])
        == set(clip["default"])
        >= {"processed_fps", "displayed_fps", "latency_ms"}
    )
    assert "Classifier crops/s" in proc.stdout and "End to end" in proc.stdout
    assert 0 <= result["other_cores"] <= os.cpu_count()
    assert result["omp_wait_policy"] == "PASSIVE"


# Imports a command's module and prints OMP_WAIT_POLICY as it stood when torch began to load.
POLICY_AT_TORCH_LOAD = """
import importlib, os, sys
seen = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(str(os.environ.get("OMP_WAIT_POLICY")))
sys.meta_path.insert(0, Watch())
importlib.import_module(sys.argv[1])
print(*seen)
"""


@pytest.mark.parametrize(
    "given, kept",
    [
        (None, "PASSIVE"),
        ("", "PASSIVE"),
        (" \t", "PASSIVE"),  # blank: unset, as empty is
        ("ACTIVE", "ACTIVE"),
        (" passive\t", " passive\t"),  # libgomp takes either word in any case, spaces around
        ("Active", "Active"),
    ],
)
def test_torch_threads_wait_without_spinning_unless_the_user_says_otherwise(given, kept):
    """Spinning OpenMP threads slowed every command 2 to 10 times beside busy programs.
    The policy counts only when set before torch loads: each command's module sees to it."""
    for module in ("app.cli", "app.benchmark", "training.evaluate", "training.distill"):
        proc = policy_at_torch_load(module, given)
        assert proc.stdout == f"{kept}\n", (module, proc.stderr)
        assert "OMP_WAIT_POLICY" not in proc.stderr, (module, proc.stderr)


@pytest.mark.parametrize(
    "given", ["bogus", "passive\x1c", "active passive", "act\u0131ve", "pa\u017f\u017five"]
)
def test_a_policy_openmp_would_reject_is_replaced_and_named_in_one_line(given):
    """libgomp rejects such a value with its own message and then spins: the app's 1-2 FPS
    instead of about 20 on shared cores."""
    for module in ("app.cli", "training.evaluate"):
        proc = policy_at_torch_load(module, given)
        assert proc.stdout == "PASSIVE\n", (module, proc.stderr)
        said = [line for line in proc.stderr.splitlines() if "OMP_WAIT_POLICY" in line]
        assert said == [
            f"OMP_WAIT_POLICY={given!r} is not ACTIVE or PASSIVE (OpenMP would reject it and "
            "spin); using PASSIVE"
        ], (module, proc.stderr)


def policy_at_torch_load(module: str, given: str | None) -> subprocess.CompletedProcess:
    """Import ``module`` with OMP_WAIT_POLICY set to ``given`` (None: unset); its standard
    output is the value in force when torch began to load."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    return subprocess.run(
        [sys.executable, "-c", POLICY_AT_TORCH_LOAD, module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_a_slow_classifier_rate_is_printed_with_its_digits_not_as_zero(capsys):
    from app.benchmark import print_tables

    row = {"device": "cpu", "batch": 1, "teacher": 0.37, "student": 315.2, "ratio": 851.9}
    result = {"classifier": [row], "detector": [], "clips": [], "device": "cpu"}
    result |= {"detector_frame": "640x480", "detector_frame_from": "blank frame"}
    print_tables(result)
    said = capsys.readouterr().out.splitlines()
    assert said[2].split() == ["cpu", "1", "0.37", "315", "851.9"]
    assert not any("other programs" in line for line in said)
    print_tables(result | {"other_cores": 1.62})  # why the teacher read 0.37
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Note: other programs kept 1.6 cores busy on average during this run, so these "
        "figures are lower than this machine gives when idle"
    )


def test_the_load_of_other_programs_is_measured_apart_from_our_own():
    from app.cpu_load import OtherLoad

    def own_work_seen() -> float:
        """Other load while this process spins, less the other load just before (on a shared
        machine other programs keep the cores busy too: three tries are given)."""
        idle = OtherLoad()
        time.sleep(0.5)
        before = idle.cores()
        load = OtherLoad()
        end = time.perf_counter() + 0.8
        while time.perf_counter() < end:  # our own work: not counted
            pass
        return load.cores() - before

    assert any(own_work_seen() < 0.5 for _ in range(3))
    busy = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass"
    load = OtherLoad()
    subprocess.run([sys.executable, "-c", busy], check=True, timeout=60)
    assert load.cores() > 0.6  # another program kept a core busy


def test_benchmark_and_clip_evaluation_refuse_what_would_measure_nothing(tmp_path, capsys):
    from app.benchmark import main as benchmark
    from training.evaluate_clips import main as evaluate_clips

    missing = tmp_path / "nowhere"
    for argv, message in (
        (["--videos", str(missing)], "is not a folder (or add --skip-clips)"),
        (["--videos", str(tmp_path)], "holds no .mp4 clips"),
        (["--videos", str(tmp_path), "--clips", "gone.mp4"], "clip gone.mp4 is not in"),
        (["--skip-clips", "--repeats", "0"], "--repeats must be at least 1, not 0"),
        (["--skip-clips", "--camera-fps", "0"], "--camera-fps must be a number above 0"),
    ):
        assert benchmark(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    for argv, message in (
        (["--videos", str(missing)], "is not a folder of clips (it takes the folder of the"),
        (["--videos", str(tmp_path)], "holds none of the expected clips (the shared set's"),
    ):
        assert evaluate_clips(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    junk = tmp_path / "clips"
    junk.mkdir()
    (junk / "masked-woman-laptop.mp4").write_bytes(b"not a video")
    assert evaluate_clips(["--videos", str(junk), "--detect-every", "0"]) == 2
    assert "--detect-every must be at least 1, not 0" in capsys.readouterr().err
    assert evaluate_clips(["--videos", str(junk), "--detect-scale", "0"]) == 2
    assert "--detect-scale must be between 0.1 and 4, got 0" in capsys.readouterr().err
    assert evaluate_clips(["--videos", str(junk), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "skipping masked-woman-laptop.mp4: " in err and "no clip in" in err
    assert benchmark(["--videos", str(junk), "--quiet"]) == 2  # refused before any timing
    err = one_line_error(capsys.readouterr().err, "app.benchmark")
    assert f"none of the 1 clips in {junk} could be read" in err


def test_window_refuses_headless_only_flags(capsys):
    from app.cli import main

    assert main(["--source", "clip.mp4", "--events", "e.jsonl", "--max-frames", "3"]) == 2
    assert "--events, --max-frames work only with --headless" in capsys.readouterr().err
    assert main(["--source", "clip.mp4", "--snapshot-every", "0"]) == 2
    assert "--snapshot-every works only with --headless" in capsys.readouterr().err


def one_line_error(err: str, prog: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


def test_json_that_is_an_input_or_in_a_bad_place_is_refused(tmp_path, capsys):
    from app.benchmark import main as benchmark
    from training.evaluate_clips import main as evaluate_clips

    videos = tmp_path / "videos"
    videos.mkdir()
    clip = write_video(videos / "masked-woman-laptop.mp4", [on_canvas(fixture_bgr("mask_1.jpg"))])
    before = clip.read_bytes()
    weights = tmp_path / "student.pt"
    weights.write_bytes((ROOT / "models" / "student.pt").read_bytes())
    for command, prog, extra in (
        (evaluate_clips, "training.evaluate_clips", []),
        (evaluate_clips, "training.evaluate_clips", ["--weights", str(weights)]),
        (benchmark, "app.benchmark", []),
    ):
        target = weights if extra else clip
        argv = ["--videos", str(videos), "--json", str(target), "--overwrite", *extra]
        assert command(argv) == 2, argv
        assert f"--json {target} is the " in one_line_error(capsys.readouterr().err, prog)
        for bad, reason in (
            (clip / "x.json", "is a file, not a folder"),
            (tmp_path / "missing" / "x.json", "does not exist"),
        ):
            assert command(["--videos", str(videos), "--json", str(bad)]) == 2
            assert reason in one_line_error(capsys.readouterr().err, prog)
    assert clip.read_bytes() == before
    assert weights.read_bytes() == (ROOT / "models" / "student.pt").read_bytes()


def interrupt_once_shown(command: list[str], marker: str) -> subprocess.CompletedProcess:
    """Run ``command``, press Ctrl-C once ``marker`` shows on its stderr (a progress bar)."""
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    seen = b""
    while marker.encode() not in seen and proc.poll() is None:
        seen += proc.stderr.read1(4096)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(command, proc.returncode, out.decode(), err.decode())


@pytest.mark.parametrize("module", ["training.evaluate_clips", "app.benchmark"])
def test_ctrl_c_stops_clip_measurements_without_a_traceback(tmp_path, module):
    videos = tmp_path / "videos"
    videos.mkdir()
    frames = [on_canvas(fixture_bgr("no_mask_2.jpg"))] * 600
    write_video(videos / "unmasked-man-outdoors.mp4", frames, fps=30)
    out = tmp_path / "figures.json"
    command = [sys.executable, "-m", module, "--videos", str(videos), "--json", str(out)]
    if module == "app.benchmark":
        command += ["--seconds", "0.05", "--repeats", "1", "--live-seconds", "60"]
    done = interrupt_once_shown(command, "clips:" if module == "app.benchmark" else ".mp4")
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("interrupted; nothing was written")
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["videos"]


def test_clip_evaluation_stops_each_clip_at_max_frames(tmp_path, capsys):
    from training.evaluate_clips import main as evaluate_clips

    clips = tmp_path / "clips"
    clips.mkdir()
    frame = on_canvas(fixture_bgr("mask_1.jpg"))
    write_video(clips / "masked-woman-laptop.mp4", [frame] * 12, fps=10)
    (clips / "unmasked-man-outdoors.mp4").write_text("not a video")
    shutil.copy(clips / "masked-woman-laptop.mp4", clips / "putting-on-mask.MP4")
    (clips / "notes.txt").write_text("where the clips came from")
    assert evaluate_clips(["--videos", str(clips), "--max-frames", "0"]) == 2
    assert "--max-frames must be at least 1" in capsys.readouterr().err
    out = tmp_path / "clips.json"
    argv = ["--videos", str(clips), "--max-frames", "4", "--quiet", "--json", str(out)]
    assert evaluate_clips(argv) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[-1] == (
        "not scored (only the shared clips whose faces keep one known label are): "
        "putting-on-mask.MP4"
    )
    record = json.loads(out.read_text())
    assert record["unscored"] == ["putting-on-mask.MP4"]
    (row,) = record["clips"]
    assert row["frames"] == 4 and row["faces"] == 4 and row["share"] == 1.0
    assert record["settings"]["max_frames"] == 4 and record["settings"]["detect_every"] >= 1
    skipped = {s["clip"]: s["reason"] for s in record["skipped"]}
    assert "is not a video or image OpenCV can read" in skipped["unmasked-man-outdoors.mp4"]
    others = [reason for name, reason in skipped.items() if "outdoors" not in name]
    assert len(others) == 5 and set(others) == {f"not in {clips}"}


def test_clip_evaluation_takes_the_detector_flags_evaluate_takes(tmp_path, capsys):
    """The README's stock-detector clip figures are taken again with --detector-weights
    stock; the table and its record say which detector made them."""
    from training.evaluate_clips import main as evaluate_clips

    clips = tmp_path / "clips"
    clips.mkdir()
    frame = on_canvas(fixture_bgr("mask_1.jpg"))
    write_video(clips / "masked-woman-laptop.mp4", [frame] * 6, fps=10)
    out = tmp_path / "clips.json"
    stock = ["--detector-weights", "STOCK", "--min-face", "30"]  # stock: no close-up pass
    argv = ["--videos", str(clips), "--max-frames", "3", "--quiet", "--json", str(out)]
    assert evaluate_clips([*argv, *stock, "--sensitivity", "high"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == (
        "model student, detector stock 0.4/0.2/0.5 score 0.5, min face 30, near face off, "
        "scale 1, detect every 3, smooth 5"
    )
    detector = json.loads(out.read_text())["settings"]["detector"]
    assert detector["weights"] == "stock" and detector["min_face_size"] == 30
    assert detector["thresholds"] == [0.4, 0.2, 0.5]

    argv[-1] = str(ROOT / "models" / "detector.pt")
    assert evaluate_clips([*argv, "--overwrite"]) == 2  # the tuned detector's own file
    assert "--json" in one_line_error(capsys.readouterr().err, "training.evaluate_clips")
    assert evaluate_clips([*argv[:-2], "--min-score", "2"]) == 2
    said = one_line_error(capsys.readouterr().err, "training.evaluate_clips")
    assert "--min-score must lie in [0, 1], got 2.0" in said


def test_tables_piped_into_head_still_write_the_json(tmp_path):
    out = tmp_path / "bench.json"
    command = (
        f"{sys.executable} -m app.benchmark --skip-clips --seconds 0.2 --repeats 1 --quiet "
        f"--json {out} | head -1; exit ${{PIPESTATUS[0]}}"
    )
    proc = shell(command)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "" or "Classifier" in proc.stdout  # head's one line
    assert json.loads(out.read_text())["classifier"]


def test_clip_table_read_by_no_one_still_writes_the_json(tmp_path):
    # The reader is gone before the first line, as with `| head -0` or a closed terminal: the
    # table cannot be shown, but the measured figures are still saved and the run succeeds.
    clips = tmp_path / "clips"
    clips.mkdir()
    frame = on_canvas(fixture_bgr("mask_1.jpg"))
    write_video(clips / "masked-woman-laptop.mp4", [frame] * 6, fps=10)
    out = tmp_path / "clips.json"
    flags = ["--videos", clips, "--max-frames", "3", "--quiet", "--json", out]
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.evaluate_clips", *map(str, flags)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=240) == 0, err
    assert "error" not in err and "Traceback" not in err
    (row,) = json.loads(out.read_text())["clips"]
    assert row["clip"] == "masked-woman-laptop.mp4" and row["frames"] == 3


def test_a_complaint_on_a_closed_standard_error_is_passed_over(monkeypatch, capsys):
    import io

    from app.console import error, tell

    error("training.evaluate", "no such folder")
    tell("training.evaluate", "interrupted; nothing was written")
    assert capsys.readouterr().err.splitlines() == [
        "training.evaluate: error: no such folder",
        "training.evaluate: interrupted; nothing was written",
    ]
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    error("training.evaluate", "no such folder")  # would raise ValueError if not passed over


def test_a_log_record_gets_a_line_of_its_own_under_a_progress_bar(monkeypatch):
    import io
    import logging

    from tqdm import tqdm

    from app.console import LOG_FORMAT, _AboveProgressBars

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    handler = _AboveProgressBars()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log = logging.getLogger("tests.console")
    monkeypatch.setattr(log, "handlers", [handler])
    monkeypatch.setattr(log, "propagate", False)
    with tqdm(total=10, desc="clip.mp4", file=sys.stderr, mininterval=0) as bar:
        bar.update(3)
        log.warning("clip.mp4 looks cut off")  # a plain StreamHandler ran on from the bar
        bar.update(7)
    lines = err.getvalue().replace("\r", "\n").splitlines()
    assert "WARNING tests.console: clip.mp4 looks cut off" in lines
    assert any(line.startswith("clip.mp4: 100%") for line in lines)


def test_the_window_without_a_display_says_so_instead_of_aborting(monkeypatch):
    import os

    from app.cli import missing_display

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--source", "clip.mp4"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("maskwatch: error: no display to open the window on")
    assert "--headless" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":987")  # a display no X server serves
    assert missing_display() == "no X server answers on DISPLAY=:987"
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("WAYLAND_DISPLAY", "/nowhere/wayland-9")
    assert missing_display() == "no Wayland server answers on WAYLAND_DISPLAY=/nowhere/wayland-9"
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # chosen by the user: left to Qt
    assert missing_display() is None


def test_clips_with_no_names_is_refused_rather_than_running_every_clip(capsys):
    from app.benchmark import main

    with pytest.raises(SystemExit) as stopped:
        main(["--clips"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "app.benchmark: error: argument --clips: expected at least one argument "
        "(--help lists the flags)"
    )
