"""Outputs of the training and measuring commands: placed as a set, strict JSON, never an input."""

import json
import os
import subprocess
import sys

import pytest
from conftest import FIXTURES

from training.outputs import OutputIsInputError, OutputSet, refuse_inputs, strict_json


def written(folder):
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_set_is_placed_whole(tmp_path, overwrite):
    with OutputSet(overwrite) as outputs:
        outputs.path(tmp_path / "teacher.pt").write_text("new teacher")
        outputs.path(tmp_path / "report" / "report.json").write_text("{}")
        assert written(tmp_path) != {}  # only temporary names so far
        assert not (tmp_path / "teacher.pt").exists()
        outputs.commit()
    assert written(tmp_path) == {"teacher.pt": "new teacher", "report/report.json": "{}"}


def test_a_failed_placement_puts_the_earlier_files_back(tmp_path):
    (tmp_path / "teacher.pt").write_text("old teacher")
    with OutputSet(overwrite=True) as outputs:
        outputs.path(tmp_path / "teacher.pt").write_text("new teacher")
        outputs.path(tmp_path / "student.pt").write_text("new student")
        (tmp_path / "student.pt").mkdir()  # appears after the run checked its outputs
        with pytest.raises(IsADirectoryError):
            outputs.commit()
    assert written(tmp_path) == {"teacher.pt": "old teacher"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.pt", "teacher.pt"]


def test_a_replaced_file_keeps_its_name_until_the_new_one_takes_it(tmp_path, monkeypatch):
    """A run killed while placing its set must never leave a final name empty: the earlier
    file is linked aside, not moved, so the name holds it until the rename of the new one."""
    import training.outputs as outputs_module

    (tmp_path / "teacher.pt").write_text("old teacher")
    seen = []
    real_place = outputs_module.place

    def place(tmp, final, overwrite):
        seen.append(final.read_text())  # what a kill at this moment would leave there
        real_place(tmp, final, overwrite)

    monkeypatch.setattr(outputs_module, "place", place)
    with OutputSet(overwrite=True) as outputs:
        outputs.path(tmp_path / "teacher.pt").write_text("new teacher")
        outputs.commit()
    assert seen == ["old teacher"]
    assert written(tmp_path) == {"teacher.pt": "new teacher"}  # the earlier copy is gone


def test_a_killed_placements_earlier_copy_goes_only_while_the_final_holds_a_file(tmp_path):
    import subprocess
    import sys

    from app.atomic import temp_name
    from training.outputs import previous_name

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    final = tmp_path / "student.pt"
    left = temp_name(previous_name(final), gone.pid)
    left.write_text("the earlier student")
    os.utime(left, (1_000_000_000, 1_000_000_000))
    with OutputSet(overwrite=True) as outputs:
        outputs.path(final).write_text("new student")  # no student.pt: the copy may be all
        outputs.commit()
    assert left.exists()
    with OutputSet(overwrite=True) as outputs:
        outputs.path(final).write_text("newer student")
        outputs.commit()
    assert not left.exists() and final.read_text() == "newer student"


def test_a_leftover_copy_under_this_processs_own_name_does_not_stop_the_placing(tmp_path):
    """In a container every run is process 1: a killed run's copy of the earlier weights
    can bear this run's own temporary name."""
    from app.atomic import temp_name
    from training.outputs import previous_name

    final = tmp_path / "teacher.pt"
    final.write_text("old teacher")
    temp_name(previous_name(final)).write_text("older teacher")
    with OutputSet(overwrite=True) as outputs:
        outputs.path(final).write_text("new teacher")
        outputs.commit()
    assert written(tmp_path) == {"teacher.pt": "new teacher"}


def test_a_killed_partial_is_found_however_its_name_was_shortened(tmp_path):
    """Under this process's own number too: a container's runs are all process 1, and the
    caller is about to write that very name."""
    from app.atomic import remove_killed_partial, temp_name

    finals = [
        tmp_path / ("e" * 250 + ".jsonl"),
        tmp_path / ("e" * 50 + "." + "j" * 200),  # a long suffix: the stem is cut short
        tmp_path / ("\u00e9" * 125 + ".csv"),
    ]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for final in finals:
        for pid in (gone.pid, os.getpid()):
            left = temp_name(final, pid)
            assert len(left.name.encode()) <= 255
            left.write_text("cut off")
            os.utime(left, (1_000_000_000, 1_000_000_000))
        remove_killed_partial(final)
    assert list(tmp_path.iterdir()) == []


def test_without_overwrite_a_file_that_appeared_meanwhile_is_kept(tmp_path):
    with OutputSet(overwrite=False) as outputs:
        outputs.path(tmp_path / "a.json").write_text("mine a")
        outputs.path(tmp_path / "b.json").write_text("mine b")
        (tmp_path / "b.json").write_text("someone else's")
        with pytest.raises(FileExistsError, match="created by someone else"):
            outputs.commit()
    assert written(tmp_path) == {"b.json": "someone else's"}


def test_an_interrupted_set_leaves_no_files_or_new_folders(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with OutputSet(overwrite=True) as outputs:
            outputs.path(tmp_path / "out" / "report" / "report.md").write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_strict_json_has_no_nan():
    text = strict_json({"loss": float("nan"), "rates": [1.5, float("inf")], "ok": (1, None)})

    def refuse(name):
        raise ValueError(name)

    assert json.loads(text, parse_constant=refuse) == {
        "loss": None,
        "rates": [1.5, None],
        "ok": [1, None],
    }


def test_an_output_that_is_an_input_is_refused(tmp_path):
    weights = tmp_path / "student.pt"
    weights.write_bytes(b"weights")
    (tmp_path / "alias.pt").symlink_to(weights)
    for output in (weights, tmp_path / "sub" / ".." / "student.pt", tmp_path / "alias.pt"):
        with pytest.raises(OutputIsInputError, match="is the --weights file"):
            refuse_inputs(output, "--json", {"--weights": weights, "clip": []})
    refuse_inputs(tmp_path / "figures.json", "--json", {"--weights": weights, "clip": None})


def test_a_headless_output_never_writes_over_weights_even_with_overwrite(tmp_path, capsys):
    from conftest import fixture_bgr, on_canvas, write_video

    from app.cli import build_parser, main, read_files
    from app.headless import Extras, check_outputs

    source = write_video(tmp_path / "clip.mp4", [on_canvas(fixture_bgr("mask_1.jpg"))] * 2)
    weights = tmp_path / "student.pt"
    weights.write_bytes(b"the user's student")
    (tmp_path / "alias.pt").symlink_to(weights)
    run = ["--headless", "--quiet", "--source", str(source), "--overwrite", "--device", "cpu"]
    cases = [
        (["--events", str(tmp_path / "alias.pt"), "--student-weights", str(weights)], "--events"),
        (["--stats", str(weights), "--detector-weights", str(weights)], "--stats"),
    ]
    for argv, flag in cases:
        assert main(run + argv) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line == (
            f"maskwatch: error: {flag} {argv[1]} would write over the {argv[2]} file; "
            "write it elsewhere"
        )
    assert weights.read_bytes() == b"the user's student"
    # The shipped weights, read or not, are checked without a run that could replace them.
    shipped = FIXTURES.parents[1] / "models" / "teacher.pt"
    args = build_parser().parse_args(run + ["--events", str(shipped), "--model", "student"])
    with pytest.raises(ValueError, match="would write over the shipped teacher weights"):
        check_outputs(str(source), None, shipped, Extras(), True, reads=read_files(args))


@pytest.mark.parametrize(
    "command, argv",
    [
        ("training.evaluate", ["--data", "{faces}", "--model", "student", "--json"]),
        ("training.evaluate_clips", ["--videos", "{clips}", "--json"]),
        ("app.benchmark", ["--videos", "{clips}", "--json"]),
        ("app.cli", ["--headless", "--source", "{clip}", "--stats"]),
        ("app.cli", ["--headless", "--source", "{clip}", "--events"]),
    ],
)
def test_no_report_replaces_a_model_the_run_does_not_read(tmp_path, capsys, command, argv):
    """A teacher copied anywhere, under any name, is the user's work: a report refuses to
    replace it even with --overwrite (the shipped files and the run's own weights were
    already refused; a copy of the teacher was not)."""
    import importlib
    import shutil

    from conftest import fixture_bgr, on_canvas, write_video

    clips = tmp_path / "clips"
    clips.mkdir()
    frame = on_canvas(fixture_bgr("mask_1.jpg"))
    clip = write_video(clips / "masked-woman-laptop.mp4", [frame] * 2)
    for folder, photo in (("with_mask", "mask_1.jpg"), ("without_mask", "no_mask_1.jpg")):
        (tmp_path / "faces" / folder).mkdir(parents=True)
        shutil.copy(FIXTURES / photo, tmp_path / "faces" / folder)
    places = {"faces": tmp_path / "faces", "clips": clips, "clip": clip}
    teacher = shutil.copy(FIXTURES.parents[1] / "models" / "teacher.pt", tmp_path / "figs.json")
    before = teacher.read_bytes()
    main = importlib.import_module(command).main
    prog = "maskwatch" if command == "app.cli" else command
    argv = [a.format(**places) for a in argv] + [str(teacher), "--overwrite", "--quiet"]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"{prog}: error: {teacher} holds PyTorch weights, which a report or recording never "
        "replaces; write it elsewhere"
    )
    assert teacher.read_bytes() == before


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_weights_of_torch_before_its_zip_format_are_told_at_every_pickle_protocol(
    tmp_path, protocol
):
    import pickle

    import torch

    from models.file_kind import WEIGHTS, model_kind

    legacy = tmp_path / "old.bin"
    state = {"conv.weight": torch.zeros(3)}
    torch.save(state, legacy, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    assert model_kind(legacy) == WEIGHTS
    plain = tmp_path / "plain.pkl"  # a pickle, not torch's: any output may replace it
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=protocol))
    assert model_kind(plain) is None


def test_no_output_folder_replaces_or_removes_a_model_named_like_its_files(tmp_path, capsys):
    """--snapshots would replace, and --overwrite would remove, files named as this source's
    snapshots; --alerts removes the snapshots its alerts.jsonl names. A model named so (a
    breaker's weights under such names) stays, whatever the flags."""
    import shutil

    from conftest import fixture_bgr, on_canvas, write_video

    from app.alerts import AlertLog
    from app.cli import main

    clip = write_video(tmp_path / "clip.mp4", [on_canvas(fixture_bgr("mask_1.jpg"))] * 2)
    teacher = FIXTURES.parents[1] / "models" / "teacher.pt"
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    named = shutil.copy(teacher, snaps / "clip.mp4-frame000099.png")
    argv = ["--headless", "--quiet", "--source", str(clip), "--overwrite", "--device", "cpu"]
    assert main([*argv, "--snapshots", str(snaps), "--snapshot-every", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"maskwatch: error: {named} holds PyTorch weights, which a report or recording never "
        "replaces; write the snapshots elsewhere"
    )
    assert named.read_bytes() == teacher.read_bytes()

    alerts = tmp_path / "alerts"
    alerts.mkdir()
    kept = shutil.copy(teacher, alerts / "alert-20250101-000000-000-track1.jpg")
    earlier = alerts / "alert-20250101-000000-000-track2.jpg"
    earlier.write_bytes(b"an earlier run's snapshot")
    lines = [{"snapshot": kept.name}, {"snapshot": earlier.name}]
    (alerts / "alerts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert AlertLog(alerts).earlier_snapshots() == {earlier}
    # and should such a file appear during the run, the clean-up after it passes it over
    from app.headless import remove_replaced

    remove_replaced({kept, earlier}, "alert snapshots")
    assert kept.read_bytes() == teacher.read_bytes() and not earlier.exists()


def test_arrays_that_cannot_be_saved_are_named_and_leave_nothing(tmp_path):
    import numpy as np

    from training.outputs import WorkNotSavedError, save_arrays

    save_arrays(tmp_path / "ok.npz", crops=np.zeros((2, 3), np.uint8))
    with np.load(tmp_path / "ok.npz") as z:
        assert z["crops"].shape == (2, 3)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WorkNotSavedError, match=r"could not save .*file/crops.npz \("):
        save_arrays(tmp_path / "file" / "crops.npz", crops=np.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "ok.npz"]


@pytest.mark.parametrize(
    "command, argv",
    [
        ("training.evaluate", ["--data", "/", "--model", "student", "--json", "-"]),
        ("training.evaluate_clips", ["--videos", ".", "--json", "-"]),
        ("app.benchmark", ["--skip-clips", "--json", "-"]),
        ("training.export", ["--out", "-"]),
        ("training.tune_detector", ["--scenes", ".", "--out", "-"]),
        ("training.distill", ["--data", "/nonexistent-data", "--out", "-"]),
        ("training.distill", ["--data", "/nonexistent-data", "--out", "/tmp/o", "--work-dir", "-"]),
    ],
)
def test_a_dash_is_refused_as_an_output_name(tmp_path, monkeypatch, capsys, command, argv):
    import importlib

    monkeypatch.chdir(tmp_path)
    main = importlib.import_module(command).main
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"{command}: error: ") and "-" in err[-1]
    assert "standard output is not offered" in err[-1] or "name a folder" in err[-1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command, flag",
    [
        ("training.evaluate", "--json"),
        ("training.evaluate_clips", "--json"),
        ("app.benchmark", "--json"),
        ("training.tune_detector", "--out"),
    ],
)
def test_a_file_output_ending_in_a_slash_is_refused(tmp_path, capsys, command, flag):
    import importlib

    main = importlib.import_module(command).main
    for ending in ("/", "/.", "/.."):
        with pytest.raises(SystemExit) as stopped:
            main([flag, str(tmp_path / "figures.json") + ending])
        assert stopped.value.code == 2
        said = capsys.readouterr().err
        assert f"figures.json{ending} ends in '{ending}', as a folder does; name a file" in said
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command", ["training.distill", "training.evaluate", "training.tune_detector"]
)
@pytest.mark.parametrize("value", ["-1", "99999999999999999999"])
def test_a_seed_numpy_cannot_take_is_refused_by_its_flag(capsys, command, value):
    import importlib

    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(command).main(["--seed", value])
    assert stopped.value.code == 2
    assert f"argument --seed: must be between 0 and 4294967295, not {value}" in (
        capsys.readouterr().err
    )


def test_outputs_inside_the_data_a_command_reads_are_refused(tmp_path, capsys):
    import os

    from training.compare_methods import main as compare
    from training.export import main as export
    from training.tune_detector import main as tune

    scenes = tmp_path / "scenes"
    (scenes / "images").mkdir(parents=True)
    (scenes / "annotations").mkdir()
    os.utime(scenes / "images", ns=(10**18, 10**18))  # a time no probe file can leave
    out = scenes / "images" / "detector.pt"
    assert tune(["--scenes", str(scenes), "--out", str(out)]) == 2
    assert f"--out {out} lies inside the --scenes folder {scenes}" in capsys.readouterr().err
    # refused before a test file was made and removed there (a read-only data folder would
    # have been told "not writable" instead, and its time changed)
    assert (scenes / "images").stat().st_mtime_ns == 10**18
    cmp = scenes / "images" / "cmp"
    teacher = FIXTURES.parents[1] / "models" / "teacher.pt"
    argv = ["--teacher", str(teacher), "--data", str(scenes / "images")]
    assert compare([*argv, "--out", str(cmp), "--quiet"]) == 2
    assert f"--out {cmp} lies inside the --data folder" in capsys.readouterr().err
    assert (scenes / "images").stat().st_mtime_ns == 10**18
    images = tmp_path / "photos"
    images.mkdir()
    assert export(["--images", str(images), "--out", str(images / "export")]) == 2
    assert "lies inside the --images folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "annotations",
        "images",
        "photos",
        "scenes",
    ]


@pytest.mark.parametrize(
    "command, name",
    [
        ("app.cli", "maskwatch"),
        ("app.benchmark", "app.benchmark"),
        ("training.distill", "training.distill"),
        ("training.evaluate", "training.evaluate"),
        ("training.evaluate_clips", "training.evaluate_clips"),
        ("training.export", "training.export"),
        ("training.tune_detector", "training.tune_detector"),
        ("training.compare_methods", "training.compare_methods"),
    ],
)
def test_a_flag_argparse_refuses_is_one_line_under_the_commands_name(capsys, command, name):
    import importlib

    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(command).main(["--no-such-flag"])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{name}: error: "), lines
    assert lines[0].endswith(" (--help lists the flags)")


@pytest.mark.parametrize(
    "command, argv, prefix",
    [
        ("app.cli", ["--headless", "--source", "x.mp4", "--out", "o.mp4"], "--out"),
        ("app.benchmark", ["--skip-clips", "--repeat", "2"], "--repeat"),
        ("training.distill", ["--data", ".", "--temp", "4"], "--temp"),
        ("training.evaluate", ["--data", ".", "--model", "student", "--verb"], "--verb"),
        ("training.evaluate_clips", ["--vid", "."], "--vid"),
        ("training.export", ["--mod", "student"], "--mod"),
        ("training.tune_detector", ["--scenes", ".", "--epoch", "1"], "--epoch"),
        (
            "training.compare_methods",
            ["--teacher", "t.pt", "--out", "o", "--epoch", "1"],
            "--epoch",
        ),
    ],
)
def test_a_flag_is_taken_only_by_its_whole_name(capsys, command, argv, prefix):
    """Scripts name flags in full: a prefix that happens to be unique today (--out for
    --output) is refused rather than read as the longer flag."""
    import importlib

    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(command).main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: {prefix}" in err, err


@pytest.mark.parametrize(
    "command, argv, said",
    [
        ("app.cli", ["--headless", "--source", "x.mp4", "--max-frames", "0"], "--max-frames"),
        ("app.benchmark", ["--skip-clips", "--repeats", "0"], "--repeats"),
        ("training.evaluate", ["--data", ".", "--model", "student", "--limit", "0"], "--limit"),
        (
            "training.compare_methods",
            ["--teacher", "t.pt", "--out", "o", "--epochs", "0"],
            "--epochs",
        ),
        ("training.distill", ["--data", ".", "--student-epochs", "0"], "--student-epochs"),
    ],
)
def test_a_value_the_command_itself_refuses_points_to_help_as_argparse_does(
    capsys, command, argv, said
):
    import importlib

    try:
        status = importlib.import_module(command).main(argv)
    except SystemExit as stopped:
        status = stopped.code
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"error: {said} must be at least 1" in lines[0], lines
    assert lines[0].endswith(" (--help lists the flags)")


@pytest.mark.parametrize(
    "command, argv, kinds",
    [
        ("app.cli", ["--headless", "--source", "x.mp4"], "auto, cpu, cuda or cuda:N"),
        ("training.evaluate", ["--data", ".", "--model", "student"], "auto, cpu, cuda or cuda:N"),
        ("training.evaluate_clips", [], "auto, cpu, cuda or cuda:N"),
        ("training.distill", ["--data", "."], "auto, cpu, cuda, cuda:N or mps"),
        ("training.tune_detector", ["--scenes", ".", "--out", "d.pt"], "cuda:N or mps"),
    ],
)
@pytest.mark.parametrize("name", ["tpu", "cuda:x", " cpu", "cuda:01", "cuda:\u0663"])
def test_a_misspelt_device_is_refused_before_any_work(capsys, command, argv, kinds, name):
    import importlib

    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(command).main([*argv, "--device", name])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"error: argument --device: unknown device {name!r}; use " in lines[0]
    assert lines[0].endswith(f"{kinds} (--help lists the flags)")


@pytest.mark.parametrize(
    "command, argv",
    [
        ("app.cli", []),
        ("training.evaluate", ["--data", "d", "--model", "student"]),
        ("training.distill", ["--data", "d"]),
    ],
)
def test_a_device_in_capitals_is_taken_as_torch_spells_it(command, argv):
    import importlib

    parser = importlib.import_module(command).build_parser()
    assert parser.parse_args([*argv, "--device", "CUDA:0"]).device == "cuda:0"
    assert parser.parse_args([*argv, "--device", "Cpu"]).device == "cpu"


def test_the_detector_keywords_take_any_case_unless_a_file_has_that_name(tmp_path, monkeypatch):
    from app.cli import build_parser

    def given(text: str) -> str:
        return build_parser().parse_args(["--detector-weights", text]).detector_weights

    monkeypatch.chdir(tmp_path)
    assert (given("STOCK"), given("Default"), given("stock")) == ("stock", "default", "stock")
    (tmp_path / "STOCK").write_bytes(b"a file the user named so")
    assert given("STOCK") == "STOCK"


def argparse_refusal(capsys, command: str, argv: list[str]) -> str:
    """The one line a command's argument parser refuses ``argv`` with (status 2)."""
    import importlib

    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(command).main(argv)
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "command, argv, flag, kind",
    [
        ("training.distill", ["--data", "d", "--out", ""], "--out", "folder"),
        ("training.distill", ["--data", "d", "--work-dir", " "], "--work-dir", "folder"),
        ("training.compare_methods", ["--teacher", "t.pt", "--out", ""], "--out", "folder"),
        ("training.tune_detector", ["--scenes", "s", "--out", ""], "--out", "file"),
        (
            "training.evaluate",
            ["--data", "d", "--model", "student", "--json", ""],
            "--json",
            "file",
        ),
    ],
)
def test_an_empty_output_name_is_refused_not_taken_as_here(
    capsys, tmp_path, monkeypatch, command, argv, flag, kind
):
    monkeypatch.chdir(tmp_path)
    said = argparse_refusal(capsys, command, argv)
    assert said.endswith(
        f"error: argument {flag}: is empty; name a {kind} (--help lists the flags)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command, argv, flag",
    [
        ("training.distill", ["--data", ""], "--data"),
        ("training.evaluate", ["--data", "", "--model", "student"], "--data"),
        ("training.evaluate_clips", ["--videos", " "], "--videos"),
        ("training.export", ["--images", ""], "--images"),
        ("training.tune_detector", ["--scenes", ""], "--scenes"),
        ("training.compare_methods", ["--teacher", "t.pt", "--out", "o", "--data", ""], "--data"),
        ("app.benchmark", ["--videos", ""], "--videos"),
        ("training.distill", ["--data", "d", "--teacher", ""], "--teacher"),
        ("training.evaluate", ["--data", "d", "--model", "student", "--weights", ""], "--weights"),
        ("training.evaluate_clips", ["--weights", " "], "--weights"),
        ("training.export", ["--weights", ""], "--weights"),
        ("training.compare_methods", ["--teacher", "", "--out", "o"], "--teacher"),
    ],
)
def test_an_empty_input_name_is_refused_not_read_as_here(capsys, command, argv, flag):
    said = argparse_refusal(capsys, command, argv)
    assert said.endswith(
        f"error: argument {flag}: is empty; name a file or folder to read (--help lists the flags)"
    )


@pytest.mark.parametrize("flag", ["--events", "--output", "--stats", "--student-weights"])
def test_the_apps_empty_names_point_to_help_too(capsys, flag):
    from app.cli import main

    assert main(["--headless", "--source", "x.mp4", flag, ""]) == 2
    said = capsys.readouterr().err.strip()
    assert said.startswith(f"maskwatch: error: {flag} is empty; name "), said
    assert said.endswith(" (--help lists the flags)"), said


@pytest.mark.parametrize(
    "command, argv, flag, what",
    [
        ("app.benchmark", ["--clips", "a.mp4", ""], "--clips", "a clip"),
        (
            "training.evaluate",
            ["--data", "d", "--model", "student", "--detector-weights", ""],
            "--detector-weights",
            "a weights file, or stock",
        ),
        ("app.cli", ["--detector-weights", " "], "--detector-weights", "a weights file, or stock"),
    ],
)
def test_an_empty_name_of_a_clip_or_weights_is_refused_by_its_flag(
    capsys, command, argv, flag, what
):
    said = argparse_refusal(capsys, command, argv)
    assert said.endswith(f"error: argument {flag}: is empty; name {what} (--help lists the flags)")


@pytest.mark.parametrize(
    "argv, said",
    [
        (["--source", ""], "--source is empty; name a camera index, a video file or a URL"),
        (["--headless", "--source", " "], "--source is empty; name a camera index, a video"),
        (["--headless", "--source", "x.mp4", "--output", "out/"], "--output out/ ends in '/'"),
    ],
)
def test_the_apps_source_and_file_names_are_refused_before_any_window(
    capsys, tmp_path, monkeypatch, argv, said
):
    from app.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [lines[-1]], lines  # no warning about missing outputs before it
    assert lines[-1].startswith(f"maskwatch: error: {said}"), lines
    assert lines[-1].endswith(" (--help lists the flags)")
    assert list(tmp_path.iterdir()) == []


def test_benchmark_refuses_clips_it_would_not_play(capsys):
    from app.benchmark import main

    assert main(["--skip-clips", "--clips", "a.mp4"]) == 2
    said = capsys.readouterr().err.strip()
    assert said.endswith(
        "--clips names clips that --skip-clips would not play; give one (--help lists the flags)"
    ), said


def test_the_warning_of_no_outputs_comes_only_for_a_source_that_plays(capsys, caplog):
    """A source that cannot be opened is the one line said; one that plays gets the note
    that its results are only summarised."""
    from app.cli import main

    assert main(["--headless", "--quiet", "--source", "1000"]) == 2
    assert "neither --output" not in caplog.text
    assert capsys.readouterr().err.strip() == (
        "maskwatch: error: no camera at index 1000: indices run from 0 to 999"
    )
    assert main(["--headless", "--quiet", "--source", str(FIXTURES / "mask_1.jpg")]) == 0
    assert "neither --output nor --events given: results are only summarised" in caplog.text


FILE_SIZE_CAP = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
import torch
from pathlib import Path
from models import checkpoint
from app.atomic import atomic_path, final_name
from models.torch_files import save_script
teacher, meta = checkpoint.load(checkpoint.default_weights("teacher"))
out = Path(sys.argv[1])
for name, write in (
    ("teacher.pt", lambda path: checkpoint.save(path, teacher, meta)),
    ("script.pt", lambda path: save_script(torch.jit.script(torch.nn.Linear(200, 200)), path, {})),
):
    try:
        with atomic_path(out / name) as tmp:
            write(tmp)
    except OSError as exc:
        # checkpoint.save is atomic itself: two temporary names, as with an OutputSet
        print(name, type(exc).__name__, exc.errno, final_name(final_name(exc.filename)).name)
"""


def test_weights_past_what_the_disk_takes_fail_as_os_errors_and_leave_nothing(tmp_path):
    """PyTorch's own writer reported a full disk as a RuntimeError, and TorchScript's aborted
    the whole process: a file-size cap makes the same writes fail for real."""
    import errno
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_CAP, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == [
        f"teacher.pt OSError {errno.EFBIG} teacher.pt",  # named: describe_error words it
        f"script.pt OSError {errno.EFBIG} script.pt",
    ]
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_an_unwritable_output_folder_is_said_with_its_cause():
    """/proc takes no new file even from root; the refusal said only "is not writable"
    (a read-only mount, which a test cannot make, is told "the file system is read-only")."""
    from pathlib import Path

    from app.atomic import check_folder, check_writable

    with pytest.raises(PermissionError) as refused:
        check_writable(Path("/proc/self/events.jsonl"), overwrite=True)
    assert str(refused.value) == (
        "cannot write /proc/self/events.jsonl: folder /proc/self is not writable "
        "(permission denied)"
    )
    with pytest.raises(PermissionError, match=r"/proc/self is not writable \(permission denied"):
        check_folder(Path("/proc/self/snapshots"))
