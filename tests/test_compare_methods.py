"""training.compare_methods: checks before any training, the table, and --resume."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, ROOT
from test_training_data import make_dataset

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


@pytest.fixture
def common(tmp_path) -> list[str]:
    data, scenes = make_dataset(tmp_path / "data"), scenes_set(tmp_path / "scenes")
    return [
        *("--data", str(data), "--scenes", str(scenes), "--teacher", str(TEACHER)),
        *("--out", str(tmp_path / "cmp"), "--work-dir", str(tmp_path / "work"), "--epochs", "1"),
    ]


def write_report(method_out: Path, accuracy=0.5, recalls=(0.5, 0.5), val=0.5, command="") -> None:
    """The part of a finished method's report.json that the comparison reads."""
    (method_out / "report").mkdir(parents=True)
    per_class = {"mask": {"recall": recalls[0]}, "no_mask": {"recall": recalls[1]}}
    figures = {"accuracy": accuracy, "per_class": per_class}
    report = {"models": {"student": {"test": figures, "best_val_acc": val}}, "command": command}
    (method_out / "report" / "report.json").write_text(json.dumps(report))


def distill_command(tmp_path: Path, method: str, epochs: int = 1) -> str:
    """The training.distill command a comparison built with ``common`` runs for ``method``."""
    argv = [
        *("--data", tmp_path / "data", "--teacher", TEACHER, "--method", method),
        *("--student-epochs", epochs, "--out", tmp_path / "cmp" / method, "--quiet"),
        *("--scenes", tmp_path / "scenes", "--negatives", "--work-dir", tmp_path / "work"),
    ]
    return "python -m training.distill " + shlex.join(str(a) for a in argv)


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
    assert main(common + ["--no-scenes"]) == 2
    assert "leave out --no-scenes" in one_line_error(capsys)
    with pytest.raises(SystemExit) as stopped:  # passed on, and refused, by distill's flags
        main(common + ["--temperature", "-1", "--bogus"])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
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
        (["--student-ep=5"], "--student-ep (read by distill as --student-epochs) is set by"),
        (["--negatives"], "it is on unless --no-scenes is given"),
    ]:
        assert main(common + ["--methods", "vanilla", "self-training", *flags]) == 2
        assert said in one_line_error(capsys)
    assert main(common + ["--temperature", "-1"]) == 2
    assert "--temperature must be a finite number above 0" in one_line_error(capsys)
    assert not out.exists() and not (tmp_path / "work").exists()

    out.mkdir()
    (out / "comparison.json").write_text("an earlier table")
    assert main(common) == 2
    assert "comparison.json already exists (pass --overwrite" in one_line_error(capsys)
    assert (out / "comparison.json").read_text() == "an earlier table"


def test_resume_keeps_the_methods_that_finished(tmp_path, common, capsys):
    """A comparison stopped after vanilla finished goes on with --resume: vanilla's report
    is read back (not trained again), self-training runs, the table has both."""
    vanilla = distill_command(tmp_path, "vanilla")
    write_report(tmp_path / "cmp" / "vanilla", 0.91, (0.9, 0.92), 0.93, command=vanilla)
    assert main(common + ["--methods", "vanilla", "self-training", "--resume"]) == 0
    table = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [r["method"] for r in table] == ["vanilla", "self-training"]
    assert table[0]["test_accuracy"] == 0.91 and table[0]["minutes"] is None
    assert 0 <= table[1]["test_accuracy"] <= 1 and table[1]["minutes"] > 0
    # each row names the distill run behind it, which distill itself would accept
    assert table[0]["command"] == vanilla
    ran = distill_command(tmp_path, "self-training").replace(" --work-dir", " --resume --work-dir")
    assert table[1]["command"] == ran  # the method after the finished one: maybe interrupted
    saved = torch.load(tmp_path / "cmp" / "self-training" / "student.pt", weights_only=True)
    assert saved["meta"]["command"] == table[1]["command"], saved["meta"]
    assert (tmp_path / "cmp" / "self-training" / "student.pt").is_file()
    assert not (tmp_path / "cmp" / "vanilla" / "student.pt").exists()  # not trained again
    assert "vanilla" in capsys.readouterr().out


def test_resume_refuses_a_finished_method_that_had_other_settings(tmp_path, common, capsys):
    """Its figures would stand in a table of runs they do not match."""
    earlier = distill_command(tmp_path, "vanilla", epochs=3)
    write_report(tmp_path / "cmp" / "vanilla", command=earlier)
    assert main(common + ["--methods", "vanilla", "--resume"]) == 2
    said = one_line_error(capsys)
    assert said.startswith(
        "training.compare_methods: error: --resume: vanilla finished earlier with other "
        f"settings ({earlier}); give the same flags as then"
    ), said
    assert not (tmp_path / "cmp" / "comparison.json").exists()


def test_resume_goes_only_to_the_method_that_was_interrupted(tmp_path, common, monkeypatch):
    """The methods after the interrupted one never started: they start afresh, so distill
    does not warn that it found no interrupted run of theirs."""
    from training import compare_methods

    calls = []

    def distill_main(argv):
        calls.append(argv)
        write_report(Path(argv[argv.index("--out") + 1]))
        return 0

    monkeypatch.setattr(compare_methods.distill, "main", distill_main)
    methods = ["vanilla", "self-training", "noisy-teacher"]
    assert main(common + ["--methods", *methods, "--resume"]) == 0
    assert ["--resume" in argv for argv in calls] == [True, False, False]
    assert [argv[argv.index("--method") + 1] for argv in calls] == methods


def test_a_method_stopped_by_a_signal_says_how_the_comparison_goes_on(common, monkeypatch, capsys):
    from training import compare_methods

    monkeypatch.setattr(compare_methods.distill, "main", lambda argv: 143)  # as after SIGTERM
    assert main(common + ["--methods", "vanilla", "self-training"]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "training.compare_methods: stopped in vanilla; run the same command with --resume "
        "to continue"
    )
