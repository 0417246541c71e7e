"""training.compare_methods: checks before any training, the table, and --resume."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, ROOT
from test_training_data import make_dataset, wait_for

from training.compare_methods import main

TEACHER = ROOT / "models" / "teacher.pt"  # mask / no_mask / not_face, 64 px crops


def scenes_set(root: Path) -> Path:
    """The CC0 fixture scenes in the VOC layout the scenes set has."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for xml in FIXTURES.glob("maksssksksss*.xml"):
        shutil.copy(xml, root / "annotations")
        shutil.copy(xml.with_suffix(".jpg"), root / "images")
    return root


def comparison_flags(root: Path) -> list[str]:
    """The flags of a one-epoch comparison of tiny data made under ``root``, into root/cmp."""
    data, scenes = make_dataset(root / "data"), scenes_set(root / "scenes")
    return [
        *("--data", str(data), "--scenes", str(scenes), "--teacher", str(TEACHER)),
        *("--out", str(root / "cmp"), "--work-dir", str(root / "work"), "--epochs", "1"),
    ]


@pytest.fixture
def common(tmp_path) -> list[str]:
    return comparison_flags(tmp_path)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, list[str]]:
    """A real comparison of vanilla alone, finished once for the module: its output folder
    and flags. Tests change a copy (``copy_of``), never this folder."""
    root = tmp_path_factory.mktemp("finished")
    flags = comparison_flags(root) + ["--methods", "vanilla"]
    assert main(flags) == 0
    return root / "cmp", flags


def copy_of(finished: tuple[Path, list[str]], tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of the ``finished`` comparison's outputs, and the flags that resume into it."""
    out, flags = finished
    copy = shutil.copytree(out, tmp_path / "cmp")
    return copy, [*flags, "--out", str(copy), "--resume"]


def write_report(method_out: Path, accuracy=0.5, recalls=(0.5, 0.5), val=0.5, command="") -> None:
    """The part of a finished method's report.json that the comparison reads."""
    (method_out / "report").mkdir(parents=True)
    per_class = {"mask": {"recall": recalls[0]}, "no_mask": {"recall": recalls[1]}}
    figures = {"accuracy": accuracy, "per_class": per_class}
    report = {
        "models": {"student": {"test": figures, "best_val_acc": val}},
        "command": command,
        "options": {"data": "data", "scenes": None},
    }
    (method_out / "report" / "report.json").write_text(json.dumps(report))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_comparison_that_cannot_finish_is_refused_before_any_training(tmp_path, common, capsys):
    out = tmp_path / "cmp"
    assert main(common + ["--epochs", "0"]) == 2
    assert "--epochs must be at least 1, not 0" in one_line_error(capsys)
    assert main(common + ["--methods", "vanilla", "vanilla"]) == 2
    assert "--methods names vanilla twice" in one_line_error(capsys)
    assert main(common + ["--resume", "--overwrite"]) == 2
    assert "give one of them" in one_line_error(capsys)
    at = common.index("--scenes")
    assert main(common[:at] + common[at + 2 :] + ["--no-scenes"]) == 2
    assert "leave out --no-scenes" in one_line_error(capsys)
    with pytest.raises(SystemExit) as stopped:  # passed on, and refused, by distill's flags
        main(common + ["--temperature", "-1", "--bogus"])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:  # a prefix of a flag distill has is no flag
        main(common + ["--student-ep=5"])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --student-ep=5" in capsys.readouterr().err
    for methods in ([], ["vanilla", "bogus"]):
        with pytest.raises(SystemExit) as stopped:
            main(common + ["--methods", *methods])
        assert stopped.value.code == 2
        assert "--methods" in capsys.readouterr().err
    for flags, said in [
        (
            ["--method", "noisy-teacher"],
            "--method is set by the comparison for every method; name the methods with --methods",
        ),
        (["--student-epochs", "5"], "--student-epochs is set by the comparison"),
        (["--negatives"], "it is on unless --no-scenes is given"),
    ]:
        assert main(common + ["--methods", "vanilla", "self-training", *flags]) == 2
        assert said in one_line_error(capsys)
    assert main(common + ["--temperature", "-1"]) == 2
    assert "--temperature must be a finite number above 0" in one_line_error(capsys)
    assert main(common + ["--teacher-epochs", "5"]) == 2  # the comparison's teacher is given
    assert "--teacher-epochs trains a new teacher, --teacher uses" in one_line_error(capsys)
    assert not out.exists() and not (tmp_path / "work").exists()

    out.mkdir()
    (out / "comparison.json").write_text("an earlier table")
    assert main(common) == 2
    assert "comparison.json already exists (pass --overwrite" in one_line_error(capsys)
    assert (out / "comparison.json").read_text() == "an earlier table"


def test_no_scenes_beside_scenes_is_refused_not_dropped(tmp_path, common, capsys):
    """Either flag would quietly undo the other: faces only, or the scenes set added."""
    assert main(common + ["--no-scenes"]) == 2
    assert one_line_error(capsys) == (
        "training.compare_methods: error: --no-scenes trains on the faces alone, --scenes "
        "adds a scenes set: give one of them (--help lists the flags)"
    )
    assert not (tmp_path / "cmp").exists() and not (tmp_path / "work").exists()


def two_class_teacher(path: Path) -> Path:
    """An untrained mask / no_mask teacher, as a faces-only (--no-scenes) comparison takes."""
    from models import checkpoint
    from models.checkpoint import ModelMeta

    checkpoint.save(path, checkpoint.build("teacher", 2), ModelMeta(arch="teacher"))
    return path


def test_missing_data_is_named_by_the_comparison_before_any_work(tmp_path, common, capsys):
    """The comparison runs distill in-process; its refusals must not name training.distill,
    a command the user never ran."""
    teacher = two_class_teacher(tmp_path / "teacher2.pt")
    at = common.index("--scenes")
    faces_only = common[:at] + common[at + 2 :] + ["--no-scenes", "--teacher", str(teacher)]
    for flags, said in [
        (
            [*faces_only, "--data", str(tmp_path / "gone")],
            f"dataset folder {tmp_path / 'gone'} not found",
        ),
        ([*common, "--scenes", str(tmp_path / "no-scenes")], f"{tmp_path / 'no-scenes'} not found"),
    ]:
        assert main(flags) == 2
        assert one_line_error(capsys) == f"training.compare_methods: error: {said}"
    assert not (tmp_path / "cmp").exists() and not (tmp_path / "work").exists()


def test_a_method_that_fails_is_named_under_the_comparison(common, monkeypatch, capsys):
    from training import compare_methods
    from training.dataset_files import DatasetError

    def unreadable(args):  # where distill lands on data that went bad after the checks
        raise DatasetError(f"{args.data} changed under the run")

    monkeypatch.setattr(compare_methods.distill, "train", unreadable)
    assert main(common + ["--methods", "vanilla"]) == 2
    data = common[common.index("--data") + 1]
    assert one_line_error(capsys) == (
        f"training.compare_methods (vanilla): error: {data} changed under the run"
    )


def test_own_flags_whose_values_begin_with_a_dash_are_judged_by_the_comparison(
    tmp_path, monkeypatch, capsys
):
    """An --out of '-' is the comparison's own flag, refused in its own name, and a folder
    named '-faces' reaches distill as given: distill's parser must not take such a value
    for a flag and refuse it as one passed on."""
    from training import distill
    from training.compare_methods import build_parser, distill_argv

    monkeypatch.chdir(tmp_path)
    make_dataset(tmp_path / "-faces")
    scenes_set(tmp_path / "-scenes")
    flags = ["--data=-faces", "--scenes=-scenes", "--teacher", str(TEACHER)]
    assert main([*flags, "--methods", "vanilla", "--out", "-"]) == 2
    assert one_line_error(capsys) == (
        "training.compare_methods: error: --out -: name a folder (standard output is not offered)"
    )
    (tmp_path / "-cmp").mkdir()
    (tmp_path / "-cmp" / "comparison.json").write_text("an earlier table")
    assert main([*flags, "--methods", "vanilla", "--out=-cmp"]) == 2
    said = one_line_error(capsys)
    assert said.startswith("training.compare_methods: error: -cmp/comparison.json already")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["-cmp", "-faces", "-scenes"]

    args, passed_on = build_parser().parse_known_args([*flags, "--out=-cmp"])
    given = distill.build_parser().parse_args(distill_argv(args, "vanilla", passed_on))
    assert given.out == Path("-cmp/vanilla") and given.data == Path("-faces")
    assert given.scenes == Path("-scenes") and given.negatives


def test_resume_keeps_the_methods_that_finished(tmp_path, common, capsys, monkeypatch):
    """A comparison stopped after vanilla finished goes on with --resume: vanilla's report
    is read back (not trained again), self-training runs, the table has both. The same
    settings written otherwise (a relative --data, passed-on flags in another order) match;
    other epochs, or a teacher retrained at the same path, are refused."""
    teacher = tmp_path / "teacher.pt"
    shutil.copy(TEACHER, teacher)
    first = [a if a != str(TEACHER) else str(teacher) for a in common]
    assert main(first + ["--methods", "vanilla", "--seed", "1", "--lr", "0.002"]) == 0
    (tmp_path / "cmp" / "comparison.json").unlink()  # as if stopped before the next method
    vanilla = tmp_path / "cmp" / "vanilla" / "student.pt"
    trained = vanilla.stat().st_mtime_ns

    monkeypatch.chdir(tmp_path)
    again = [a if a != str(tmp_path / "data") else "data" for a in first]
    methods = ["--methods", "vanilla", "self-training", "--resume"]
    assert main(again + [*methods, "--epochs", "2", "--lr=2e-3", "--seed", "1"]) == 2
    said = one_line_error(capsys)
    assert "vanilla finished earlier with other settings (--epochs: 1 there)" in said, said
    assert f"delete {tmp_path / 'cmp' / 'vanilla'} to run vanilla again" in said, said

    assert main(again + [*methods, "--lr=2e-3", "--seed", "1"]) == 0
    table = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [r["method"] for r in table] == ["vanilla", "self-training"]
    assert table[0]["minutes"] is None and table[1]["minutes"] > 0
    assert vanilla.stat().st_mtime_ns == trained  # not trained again
    # each row names the distill run behind it, which distill itself would accept
    assert table[0]["command"].startswith("python -m training.distill --data ")
    assert "--student-epochs 1 " in table[0]["command"] and "--epochs" not in table[0]["command"]
    saved = torch.load(tmp_path / "cmp" / "self-training" / "student.pt", weights_only=True)
    assert saved["meta"]["command"] == table[1]["command"], saved["meta"]

    state = torch.load(teacher, weights_only=True)
    first_weight = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][first_weight] += 0.01  # retrained, same path
    torch.save(state, teacher)
    (tmp_path / "cmp" / "comparison.json").unlink()
    assert main(again + [*methods, "--lr=2e-3", "--seed", "1"]) == 2
    said = one_line_error(capsys)
    assert "vanilla finished earlier with other settings (teacher: 'teacher file " in said


# Ways a finished method's report.json can be damaged or edited by hand, applied to its JSON.
DAMAGES = {
    "cut short": None,
    "no test accuracy": lambda r: r["models"]["student"]["test"].pop("accuracy"),
    "options a list": lambda r: r.update(options=[]),
    "recall a word": lambda r: r["models"]["student"]["test"]["per_class"]["mask"].update(
        recall="high"
    ),
    "no data digest": lambda r: r["settings"].pop("data"),
    "a list": lambda r: r.clear(),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_finished_report_is_named_with_the_way_on(tmp_path, finished, damage, capsys):
    out, flags = copy_of(finished, tmp_path)
    report = out / "vanilla" / "report" / "report.json"
    if damage is None:
        report.write_text("{ cut short")
    else:
        found = json.loads(report.read_text())
        damage(found)
        report.write_text(json.dumps(found or []))
    assert main(flags) == 2
    assert one_line_error(capsys) == (
        f"training.compare_methods: error: --resume: {report} cannot be read; delete "
        f"{out / 'vanilla'} to run vanilla again"
    )


def test_a_report_without_its_report_json_is_named_with_the_way_on(tmp_path, finished, capsys):
    """The other report files and the weights left without report.json: the comparison can
    neither keep the method nor have distill write over them, so it names what to delete."""
    out, flags = copy_of(finished, tmp_path)
    report = out / "vanilla" / "report" / "report.json"
    report.unlink()
    assert main(flags) == 2
    assert one_line_error(capsys) == (
        f"training.compare_methods: error: --resume: {report} is missing beside the rest of "
        f"vanilla's outputs; delete {out / 'vanilla'} to run vanilla again"
    )


def test_resume_refuses_a_method_that_finished_on_other_data(tmp_path, common, capsys):
    """Photos added after vanilla finished: keeping vanilla while self-training learns from
    the new photos would put two data sets in one table."""
    assert main(common + ["--methods", "vanilla"]) == 0
    (tmp_path / "cmp" / "comparison.json").unlink()
    masked = tmp_path / "data" / "with_mask"
    for k, photo in enumerate(sorted(masked.iterdir())[:3]):
        shutil.copy(photo, masked / f"added {k}.png")
    assert main(common + ["--methods", "vanilla", "self-training", "--resume"]) == 2
    assert one_line_error(capsys) == (
        "training.compare_methods: error: --resume: the data changed since vanilla finished "
        "(its report records other crops than --data, --scenes and --negative-thresholds give "
        f"now); delete {tmp_path / 'cmp' / 'vanilla'} to run vanilla again, or leave out "
        "--resume and pass --overwrite to run every method anew"
    )
    assert not (tmp_path / "cmp" / "self-training").exists()


def stopped_comparison(flags: list[str], root: Path, method: str) -> list[Path]:
    """Run a 30-epoch comparison and stop it (SIGTERM) once ``method`` has saved a student
    state in root/work; that state's files."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.compare_methods", *flags, "--epochs", "30"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    found = wait_for(f"{method}-*/student-state.pt", root / "work" / "train-state", proc)
    assert found, proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    return found


def test_resume_with_other_epochs_than_the_interrupted_method_names_epochs(
    tmp_path, common, capsys
):
    """distill's refusal of a kept run with other settings, said in the comparison's flags."""
    found = stopped_comparison(common + ["--methods", "vanilla"], tmp_path, "vanilla")
    assert main(common + ["--methods", "vanilla", "--epochs", "5", "--resume"]) == 2
    said = one_line_error(capsys)
    assert said.startswith("training.compare_methods: error: --resume: "), said
    assert "(differs in --epochs: 30 there)" in said and "--student-epochs" not in said, said
    assert found[0].exists()  # kept for a resume with the same flags


def test_resume_at_another_seed_than_the_interrupted_method_names_the_seed(
    tmp_path, common, capsys
):
    """Nothing kept at --seed 5: the comparison would start anew, leaving the run stopped at
    seed 0 unused. It is refused instead, naming the kept run and its seed."""
    found = stopped_comparison(common + ["--methods", "vanilla"], tmp_path, "vanilla")
    assert main(common + ["--methods", "vanilla", "--seed", "5", "--resume"]) == 2
    said = one_line_error(capsys)
    assert said.startswith(
        "training.compare_methods: error: --resume: no interrupted run of vanilla at --seed 5"
    ), said
    assert f"kept: {found[0].parent.name} (--seed 0)" in said, said
    assert found[0].exists()


def test_resume_goes_to_each_method_that_kept_a_state_in_any_order(tmp_path, common, monkeypatch):
    """self-training stopped part way, then the methods listed in another order (or a
    deleted method run again first): self-training still resumes from its state, and the
    method that kept nothing starts afresh, with no warning that it found no run."""
    from training import compare_methods

    stopped_comparison(
        common + ["--methods", "self-training", "vanilla"], tmp_path, "self-training"
    )
    calls = []

    def distill_main(
        argv, name
    ):  # what the comparison asks of distill; the training is tested apart
        calls.append(argv)
        write_report(Path(argv[argv.index("--out") + 1]))
        return 0

    monkeypatch.setattr(compare_methods.distill, "main", distill_main)
    methods = ["vanilla", "self-training"]
    assert main(common + ["--epochs", "30", "--methods", *methods, "--resume"]) == 0
    assert [argv[argv.index("--method") + 1] for argv in calls] == methods
    assert ["--resume" in argv for argv in calls] == [False, True]


def test_a_report_without_its_student_is_named_with_the_way_on(tmp_path, finished, capsys):
    """Its row would describe a student that is gone."""
    out, flags = copy_of(finished, tmp_path)
    (out / "vanilla" / "student.pt").unlink()
    assert main(flags) == 2
    assert one_line_error(capsys) == (
        f"training.compare_methods: error: --resume: {out / 'vanilla' / 'student.pt'} is "
        f"missing beside vanilla's report; delete {out / 'vanilla'} to run vanilla again"
    )


def test_a_method_stopped_by_a_signal_says_how_the_comparison_goes_on(common, monkeypatch, capsys):
    from training import compare_methods

    monkeypatch.setattr(compare_methods.distill, "main", lambda argv, name: 143)  # as after SIGTERM
    assert main(common + ["--methods", "vanilla", "self-training"]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "training.compare_methods: stopped in vanilla; run the same command with --resume "
        "to continue"
    )


def test_a_comparison_stopped_under_overwrite_leaves_no_old_table(
    tmp_path, common, monkeypatch, capsys
):
    """The earlier table's rows describe students this run replaces: it goes at the start,
    and the way on is --resume in place of --overwrite, which that command refuses."""
    from training import compare_methods

    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "comparison.json").write_text("[]")
    monkeypatch.setattr(compare_methods.distill, "main", lambda argv, name: 130)  # as after Ctrl-C
    assert main(common + ["--methods", "vanilla", "--overwrite"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "training.compare_methods: stopped in vanilla; run the same command with --resume "
        "in place of --overwrite to continue"
    )
    assert not (tmp_path / "cmp" / "comparison.json").exists()
