"""Training data preparation: rules, near-duplicate groups, leak-free split, bad folders."""

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, scenes_copy

from app.config import CropConfig, DetectorConfig
from app.detector import FaceDetector, part_of
from app.images import read_rgb
from models import checkpoint
from training.dataset_files import DatasetError, find_images
from training.dedup import dhash, group_near_duplicates
from training.distill import build_parser, run_key
from training.distill import main as distill_main
from training.prepare import face_crop_for_image, prepare, second_opinion_for, split_groups

ROOT = Path(__file__).resolve().parents[1]


def image_variants(name: str) -> list[np.ndarray]:
    """Distinct-looking versions of one fixture (not near-duplicates of each other)."""
    image = cv2.imread(str(FIXTURES / name))
    h, w = image.shape[:2]
    return [
        image,
        image[:, ::-1].copy(),
        image[: h * 3 // 4].copy(),
        cv2.GaussianBlur(image[h // 8 :, w // 8 :], (0, 0), 1.5),
    ]


def make_dataset(root: Path) -> Path:
    (root / "with_mask").mkdir(parents=True)
    (root / "without_mask").mkdir()
    for folder, names in (
        ("with_mask", ["mask_1.jpg", "mask_2.png"]),
        ("without_mask", ["no_mask_1.jpg", "no_mask_2.jpg"]),
    ):
        for name in names:
            for k, image in enumerate(image_variants(name)):
                cv2.imwrite(str(root / folder / f'{Path(name).stem} {k}\'s "copy".png'), image)
    return root


def test_dhash_groups_near_duplicates_only():
    image = cv2.cvtColor(cv2.imread(str(FIXTURES / "no_mask_1.jpg")), cv2.COLOR_BGR2RGB)
    brighter = np.clip(image.astype(int) + 12, 0, 255).astype(np.uint8)
    other = cv2.cvtColor(cv2.imread(str(FIXTURES / "mask_1.jpg")), cv2.COLOR_BGR2RGB)
    hashes = [dhash(image), dhash(brighter), dhash(other), dhash(image[:, ::-1])]
    assert group_near_duplicates(hashes) == [0, 0, 1, 2]


def test_split_never_puts_a_group_on_both_sides():
    groups = [i // 3 for i in range(300)]
    labels = [(i // 3) % 2 for i in range(300)]
    splits = split_groups(groups, labels, seed=5)
    for g in set(groups):
        assert len({s for s, gg in zip(splits, groups) if gg == g}) == 1
    assert splits == split_groups(groups, labels, seed=5)
    assert splits != split_groups(groups, labels, seed=6)
    share = splits.count("test") / len(splits)
    assert 0.1 < share < 0.2


def test_prepare_counts_rules_and_lists_bad_files(tmp_path):
    data = make_dataset(tmp_path / "data")
    (data / "with_mask" / "broken.jpg").write_bytes(b"not really a jpeg")
    (data / "with_mask" / "notes.txt").write_text("collected in 2020")
    (data / "without_mask" / "LICENSE").write_text("MIT")
    (data / "without_mask" / "labels.yaml").write_text("a: 1")
    prepared = prepare(data, tmp_path / "cache", seed=0, progress=False)
    stats = prepared.stats
    assert stats["images"] == 17 and stats["used"] == 16
    assert [Path(p).name for p in stats["unreadable"]] == ["broken.jpg"]
    assert sorted(Path(p).name for p in stats["not_images"]) == [
        "LICENSE",
        "labels.yaml",
        "notes.txt",
    ]
    assert sum(stats["rules"].values()) == 16
    assert prepared.crops.shape == (16, 128, 128, 3)
    assert sorted(set(prepared.splits)) == ["test", "train", "val"]
    manifest = json.loads(next((tmp_path / "cache").glob("manifest-*.json")).read_text())
    assert any('\'s "copy"' in f["file"] for f in manifest["files"])
    assert {f["label"] for f in manifest["files"]} == {"mask", "no_mask"}
    again = prepare(data, tmp_path / "cache", seed=0, progress=False)  # from the cache
    assert np.array_equal(again.crops, prepared.crops)


def test_distill_never_writes_its_report_over_a_model(tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    (out / "report").mkdir(parents=True)
    teacher = ROOT / "models" / "teacher.pt"
    kept = shutil.copy(teacher, out / "report" / "curves.png")
    argv = ["--data", str(make_dataset(tmp_path / "data")), "--out", str(out), "--quiet"]
    assert distill_main([*argv, "--overwrite", "--work-dir", str(tmp_path / "work")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"training.distill: error: {kept} holds PyTorch weights, which the run's report "
        "never replaces; move it or write the run elsewhere"
    )
    assert kept.read_bytes() == teacher.read_bytes()
    assert sorted(p.name for p in out.rglob("*")) == ["curves.png", "report"]


def test_a_limit_takes_that_many_images_of_each_class_spread_over_its_files(tmp_path):
    data = make_dataset(tmp_path / "data")  # 8 images a class
    (data / "with_mask" / "broken.jpg").write_bytes(b"not really a jpeg")  # sorts first
    prepared = prepare(data, tmp_path / "cache", seed=0, progress=False, limit=3)
    names = sorted(Path(f).name for f in prepared.files)
    assert prepared.stats["images"] == 6 and prepared.stats["limit_per_class"] == 3
    assert len(prepared.stats["unreadable"]) == 1  # counted among the 3, not replaced
    assert names == [  # first, middle and last of each class's 8 (9 with the broken one)
        'mask_1 3\'s "copy".png',
        'mask_2 3\'s "copy".png',
        'no_mask_1 0\'s "copy".png',
        'no_mask_2 0\'s "copy".png',
        'no_mask_2 3\'s "copy".png',
    ]
    whole = prepare(data, tmp_path / "cache", seed=0, progress=False)  # its own cache
    assert whole.stats["used"] == 16 and whole.stats["limit_per_class"] is None


def test_a_class_smaller_than_the_limit_is_taken_whole_and_said(tmp_path, caplog):
    data = make_dataset(tmp_path / "data")  # 8 images a class
    first = sorted((data / "with_mask").iterdir())[0]
    for extra in range(4):
        shutil.copy(first, data / "with_mask" / f"extra{extra}.png")
    with caplog.at_level(logging.WARNING, logger="training.prepare"):
        prepared = prepare(data, tmp_path / "cache", seed=0, progress=False, limit=10)
    assert prepared.stats["images"] == 18  # 10 of the 12 masked, all 8 unmasked
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert said == ["class 'no_mask' has only 8 images, fewer than --limit 10: all are used"]


@pytest.mark.parametrize(
    "damage",
    ["cut the crops short", "empty manifest", "not JSON", "rules a list", "labels cut short"],
)
def test_a_damaged_crop_cache_is_prepared_anew(tmp_path, caplog, damage):
    data, cache = make_dataset(tmp_path / "data"), tmp_path / "cache"
    prepared = prepare(data, cache, seed=0, progress=False)
    crops, manifest = next(cache.glob("crops-*.npz")), next(cache.glob("manifest-*.json"))
    if damage == "cut the crops short":
        crops.write_bytes(crops.read_bytes()[:3000])
    elif damage == "rules a list":
        written = json.loads(manifest.read_text())
        written["stats"]["rules"] = []
        manifest.write_text(json.dumps(written))
    elif damage == "labels cut short":
        with np.load(crops) as z:
            arrays = dict(z)
        arrays["labels"] = arrays["labels"][:3]
        np.savez(crops, **arrays)
    else:
        manifest.write_text("{}" if damage == "empty manifest" else "{not json")
    again = prepare(data, cache, seed=0, progress=False)
    assert np.array_equal(again.crops, prepared.crops)
    warned = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(warned) == 1 and str(crops) in warned[0] and "preparing them anew" in warned[0]
    assert prepare(data, cache, seed=0, progress=False).stats == prepared.stats  # mended


def test_bad_dataset_folders(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        find_images(tmp_path / "missing")
    (tmp_path / "faces.zip").write_bytes(b"PK not a folder")
    with pytest.raises(DatasetError, match="faces.zip is a file, not a dataset folder"):
        find_images(tmp_path / "faces.zip")
    (tmp_path / "faces.zip").unlink()
    with pytest.raises(DatasetError, match="no class folders"):
        find_images(tmp_path)
    (tmp_path / "with_mask").mkdir()
    with pytest.raises(DatasetError, match="only one class"):
        find_images(tmp_path)
    (tmp_path / "Without_Mask").write_text("a file where the class folder should be")
    with pytest.raises(DatasetError, match="Without_Mask is a file, not a folder of no_mask"):
        find_images(tmp_path)
    (tmp_path / "Without_Mask").unlink()
    (tmp_path / "without_mask").mkdir()
    shutil.copy(FIXTURES / "mask_1.jpg", tmp_path / "with_mask")
    with pytest.raises(
        DatasetError, match=r"^without_mask/ in .* holds no images \(class no_mask\)$"
    ):
        find_images(tmp_path)


def test_class_of_only_undecodable_files_is_named(tmp_path):
    data = make_dataset(tmp_path / "data")
    for image in (data / "without_mask").iterdir():
        image.unlink()
    for k in range(3):
        (data / "without_mask" / f"scan {k}.jpg").write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(DatasetError, match="class 'no_mask' .* no readable images: none of its 3"):
        prepare(data, tmp_path / "cache", seed=0, progress=False)


def distill(*args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "training.distill", "--quiet", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_distill_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    proc = distill("--data", FIXTURES, "--out", tmp_path / "out")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith("training.distill: error: ")
    assert "Traceback" not in err


def test_distill_says_how_many_images_are_too_few(tmp_path):
    data = tmp_path / "data"
    for folder, name in (("with_mask", "mask_1.jpg"), ("without_mask", "no_mask_1.jpg")):
        (data / folder).mkdir(parents=True)
        shutil.copy(FIXTURES / name, data / folder)
    out = tmp_path / "out"
    proc = distill("--data", data, "--out", out, "--work-dir", tmp_path / "work")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "2 usable images are too few to split" in err.strip().splitlines()[-1]
    assert not out.exists()


def wait_for(pattern: str, folder: Path, proc: subprocess.Popen, seconds: float = 240) -> list:
    """The files matching ``pattern`` under ``folder`` that ``proc`` wrote, once there is one."""
    started, deadline = time.time() - 1, time.time() + seconds

    def written() -> list[Path]:
        return [f for f in folder.glob(pattern) if f.stat().st_mtime > started]

    while not written() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    return written()


def test_the_same_seed_gives_the_same_weights_from_fresh_or_cached_crops(tmp_path):
    """The first run crops the photos, the second reads the crops back: cropping draws random
    numbers that reading does not, which must not change the training."""
    import torch

    data, work = make_dataset(tmp_path / "data"), tmp_path / "work"
    for out in ("fresh", "cached"):
        flags = ["--data", str(data), "--out", str(tmp_path / out), "--work-dir", str(work)]
        flags += ["--input-size", "32", "--batch-size", "8", "--teacher-epochs", "1"]
        flags += ["--student-width", "8"]
        assert distill_main([*flags, "--student-epochs", "1", "--quiet", "--seed", "3"]) == 0
    fresh, cached = (
        torch.load(tmp_path / out / "student.pt", weights_only=True)["state_dict"]
        for out in ("fresh", "cached")
    )
    assert fresh.keys() == cached.keys()
    assert all(torch.equal(fresh[name], cached[name]) for name in fresh)
    student, meta = checkpoint.load(tmp_path / "fresh" / "student.pt", "student")
    assert meta.width == 8 and student.features[0][0].out_channels == 8


def test_resume_continues_only_its_own_interrupted_run(tmp_path):
    import torch

    data, work = make_dataset(tmp_path / "data"), tmp_path / "work"
    states = work / "train-state"

    def run(out: str, teacher_epochs: int, *extra):
        return distill(
            *("--data", data, "--out", tmp_path / out, "--work-dir", work),
            *("--input-size", 32, "--batch-size", 8, "--student-epochs", 1),
            *("--teacher-epochs", teacher_epochs, *extra),
        )

    finished = run("A", 1)
    _, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err
    assert not list(states.glob("*/*-state.pt"))  # a finished run is never resumed

    proc = run("B", 5)
    found = wait_for("*/teacher-state.pt", states, proc)
    assert found, proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "training.distill: terminated (SIGTERM); run again with --resume" in err
    assert not (tmp_path / "B" / "teacher.pt").exists()
    done = torch.load(found[0], weights_only=True)["epoch"]
    assert 1 <= done < 5

    proc = run("B", 6, "--resume")  # a flag changed by mistake: refused, the state kept
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    said = err.strip().splitlines()[-1]
    assert said.startswith("training.distill: error: --resume: no interrupted run"), said
    assert "'teacher trained for 5 epochs' there)" in said and found[0].exists()
    assert "data: {" not in err  # refused before the crops were read back

    # a --limit trial's --resume is refused at once too, however long cropping would take
    proc = run("B", 5, "--resume", "--limit", 20)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "--limit: None there" in err and "data: {" not in err, err

    proc = run("B", 5, "--resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming teacher" in err and f"teacher epoch {done}:" not in err
    assert "teacher epoch 5:" in err and "resuming student" not in err
    report = json.loads((tmp_path / "B" / "report" / "report.json").read_text())
    assert report["models"]["student"]["parameters"] < report["models"]["teacher"]["parameters"]
    students = [torch.load(tmp_path / o / "student.pt")["state_dict"] for o in ("A", "B")]
    assert any(not torch.equal(students[0][k], students[1][k]) for k in students[0])
    assert not list(states.glob("*/*-state.pt"))
    assert not list((tmp_path / "B").glob(".*partial*"))


def test_ctrl_c_stops_training_even_when_the_shell_ignored_it(tmp_path):
    # A shell script's background job starts with SIGINT ignored; `kill -INT` must still work.
    data, work = make_dataset(tmp_path / "data"), tmp_path / "work"
    proc = distill(
        *("--data", data, "--out", tmp_path / "out", "--work-dir", work),
        *("--input-size", 32, "--teacher-epochs", 50, "--student-epochs", 50),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.time() + 120
    while not (work / "prepared").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    # Into the cropping: the folder appears when it starts. Cropping the few photos and a
    # 32 px epoch can both end within a second on an idle machine, so wait no longer.
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        "training.distill: interrupted before any epoch finished; nothing to resume yet"
    )
    assert not (tmp_path / "out").exists()


def test_distill_writes_nothing_inside_its_data(tmp_path, capsys):
    data = make_dataset(tmp_path / "data")
    before = sorted(data.rglob("*"))
    for flags, named in [
        (["--out", str(data / "with_mask")], "--out"),
        (["--out", str(tmp_path / "out"), "--work-dir", str(data)], "--work-dir"),
    ]:
        code = distill_main(["--data", str(data), "--quiet", *flags])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, err
        assert err[-1].startswith(f"training.distill: error: {named} ")
        assert "lies inside the --data folder" in err[-1]
    assert sorted(data.rglob("*")) == before


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--teacher-epochs", "3"),
        ("--student-epochs", "3"),
        ("--lr", "0.01"),
        ("--temperature", "2"),
        ("--distil-weight", "0.5"),
        ("--batch-size", "16"),
        ("--input-size", "32"),
        ("--label-smoothing", "0"),
        ("--hue", "30"),
        ("--grey", "0.1"),
        ("--method", "noisy-teacher"),
        ("--seed", "1"),
    ],
)
def test_run_key_covers_every_setting_that_changes_the_weights(flag, value):
    names = ("mask", "no_mask")
    key = run_key(build_parser().parse_args(["--data", "d"]), "crops", names)
    other = build_parser().parse_args(["--data", "d", flag, value])
    assert run_key(other, "crops", names) != key
    assert run_key(build_parser().parse_args(["--data", "d"]), "other crops", names) != key
    same = build_parser().parse_args(["--data", "d", "--device", "cpu", "--out", "x", "--quiet"])
    assert run_key(same, "crops", names) == key


def test_run_key_follows_the_teacher_file_not_the_teacher_epochs(tmp_path):
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    first.write_bytes(b"teacher weights, one version")
    second.write_bytes(b"teacher weights, another version")

    def key(teacher: Path, *extra: str) -> str:
        args = build_parser().parse_args(["--data", "d", "--teacher", str(teacher), *extra])
        return run_key(args, "crops", ("mask", "no_mask"))

    assert key(first) != key(second)
    assert key(first) == key(first, "--teacher-epochs", "40")


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--temperature", "nan", "--temperature must be a finite number above 0, not nan"),
        ("--temperature", "0", "--temperature must be a finite number above 0"),
        ("--temperature", "inf", "--temperature must be a finite number above 0"),
        ("--distil-weight", "nan", "--distil-weight must be between 0 and 1, not nan"),
        ("--distil-weight", "1.5", "--distil-weight must be between 0 and 1"),
        ("--label-smoothing", "1", "--label-smoothing must be at least 0 and below 1"),
        ("--label-smoothing", "nan", "--label-smoothing must be at least 0 and below 1"),
        ("--hue", "nan", "--hue must lie in [0, 180] degrees and --grey in [0, 1], not nan"),
        ("--grey", "1.5", "--hue must lie in [0, 180] degrees and --grey in [0, 1]"),
        ("--lr", "nan", "--lr must be a finite number above 0, not nan"),
        ("--lr", "inf", "--lr must be a finite number above 0"),
        ("--lr", "-0.001", "--lr must be a finite number above 0"),
        ("--input-size", "24", "--input-size must be at least 32 px"),
        ("--input-size", "1056", "--input-size must be at most 1024 px (the app loads no"),
        ("--student-width", "2", "--student-width must lie in [4, 128], not 2"),
        ("--student-epochs", "0", "--student-epochs must be at least 1, not 0"),
        ("--batch-size", "1", "--batch-size must be at least 2, not 1"),
        ("--limit", "19", "--limit must be at least 20 images of each class"),
    ],
)
def test_distill_refuses_settings_that_cannot_train(tmp_path, capsys, flag, value, message):
    out = tmp_path / "out"
    code = distill_main(["--data", str(FIXTURES), "--out", str(out), "--quiet", flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(f"training.distill: error: {message}")
    assert not out.exists()


def test_negative_thresholds_without_negatives_are_refused(tmp_path, capsys):
    argv = ["--data", str(FIXTURES), "--out", str(tmp_path / "out"), "--quiet"]
    assert distill_main(argv + ["--negative-thresholds", "0.3", "0.1", "0.3"]) == 2
    err = capsys.readouterr().err
    assert "--negative-thresholds works only with --negatives" in err


def test_teacher_epochs_with_a_trained_teacher_are_refused_not_ignored(tmp_path, capsys):
    """--teacher-epochs trains a teacher; with --teacher none is trained, so the number would
    silently do nothing. Said first, before the teacher file is read and judged."""
    out = tmp_path / "out"
    argv = ["--data", str(FIXTURES), "--out", str(out), "--quiet"]
    teacher = checkpoint.default_weights("teacher")
    code = distill_main(argv + ["--teacher", str(teacher), "--teacher-epochs", "20"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(
        "training.distill: error: --teacher-epochs trains a new teacher, --teacher uses a "
        "trained one: give one of them"
    )
    assert not out.exists()
    assert distill_main(argv + ["--teacher-epochs", "0"]) == 2
    assert "--teacher-epochs must be at least 1" in capsys.readouterr().err


def test_distill_says_a_data_file_is_not_a_folder(tmp_path, capsys):
    archive = tmp_path / "faces.zip"
    archive.write_bytes(b"PK not a folder")
    code = distill_main(["--data", str(archive), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == f"training.distill: error: {archive} is a file, not a dataset folder"


def test_a_diverging_run_writes_no_weights(tmp_path):
    data, out = make_dataset(tmp_path / "data"), tmp_path / "out"
    out.mkdir()
    for name in ("teacher.pt", "student.pt"):
        (out / name).write_bytes(b"earlier weights")
    proc = distill(
        *("--data", data, "--out", out, "--work-dir", tmp_path / "work", "--overwrite"),
        *("--input-size", 32, "--batch-size", 4, "--teacher-epochs", 2, "--lr", 1e30),
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("training.distill: error: teacher training diverged: loss is ")
    assert last.endswith("; try a lower --lr") and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["student.pt", "teacher.pt"]
    assert all((out / n).read_bytes() == b"earlier weights" for n in ("teacher.pt", "student.pt"))


def test_scenes_split_is_seeded_and_stable(tmp_path):
    from training.scenes_split import split_scenes
    from training.voc import find_scenes

    pairs = find_scenes(scenes_copy(tmp_path / "scenes")).pairs
    first = split_scenes(pairs, seed=0, test_fraction=0.5)
    assert first == split_scenes(pairs, seed=0, test_fraction=0.5)
    assert set(first.values()) <= {"train", "test"}
    assert split_scenes(pairs, seed=0, test_fraction=0.0) == dict.fromkeys(first, "train")
    assert split_scenes(pairs[:2], seed=0, test_fraction=0.5) == {
        k: v for k, v in first.items() if k in {p.image.stem for p in pairs[:2]}
    }


def test_scene_crops_take_only_the_train_split(tmp_path, monkeypatch):
    from app.config import DetectorConfig
    from training import scene_crops

    scenes = scenes_copy(tmp_path / "scenes")
    monkeypatch.setattr(
        scene_crops,
        "split_scenes",
        lambda pairs, seed: {
            p.image.stem: "test" if "52" in p.image.stem else "train" for p in pairs
        },
    )
    names = ("mask", "no_mask", "not_face")
    crops, labels, stats = scene_crops.scene_training_crops(
        scenes,
        names,
        tmp_path / "cache",
        negatives=DetectorConfig(thresholds=(0.4, 0.5, 0.5), min_score=0.5),
        progress=False,
    )
    # 129 holds 1 with_mask and 2 without_mask faces, 289 two without_mask; 52 is test only
    assert stats["train_images"] == 2
    assert stats["crops"]["mask"] == 1 and stats["crops"]["no_mask"] == 4
    assert crops.shape[1:] == (128, 128, 3) and len(crops) == len(labels)
    assert set(labels.tolist()) <= {0, 1, 2}


def test_distill_keeps_an_existing_report_and_checks_values(tmp_path):
    out = tmp_path / "out"
    (out / "report").mkdir(parents=True)
    (out / "report" / "report.json").write_text("{}")
    for extra, message in [
        ([], "already holds a report"),
        (["--overwrite", "--batch-size", "0"], "--batch-size"),
    ]:
        proc = distill("--data", FIXTURES, "--out", out, *extra)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and message in err and "Traceback" not in err
    assert (out / "report" / "report.json").read_text() == "{}"


def still_augment(**chosen):
    """Augmentation with every random step off but those ``chosen``."""
    from training.augment import AugmentConfig

    quiet = dict(flip=0, scale=(1, 1), shift=0, rotation_deg=0, brightness=0, contrast=0)
    return AugmentConfig(**quiet, saturation=0, blur=0, low_res=0, **chosen)


def test_colour_augmentation_shifts_hue_and_sometimes_drops_colour():
    from training.augment import AugmentConfig, augment

    crop = np.zeros((32, 32, 3), np.uint8)
    crop[..., 0] = 200  # pure red
    still = still_augment(hue_deg=30.0, grey=0.0)
    rng = np.random.default_rng(0)
    shifted = [augment(crop, rng, still)[16, 16] for _ in range(20)]
    assert len({tuple(p) for p in shifted}) > 5  # hue moves: green or blue creeps in
    assert all(p[0] >= 150 for p in shifted)  # by 30 degrees at most: red stays dominant
    grey = augment(crop, rng, AugmentConfig(**{**still.__dict__, "grey": 1.0, "hue_deg": 0}))
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_sunglasses_darken_the_eyes_and_leave_the_mouth_alone():
    from training.augment import AugmentConfig, augment

    crop = np.full((128, 128, 3), 220, np.uint8)  # a bright, flat crop
    still = still_augment(sunglasses=1.0)
    rng = np.random.default_rng(3)
    for _ in range(20):
        out = augment(crop, rng, still)
        eyes, mouth = out[36:52, 16:112], out[80:, :]
        assert (eyes.max(axis=2) < 100).mean() > 0.4  # dark lenses over most of the band
        assert (mouth == 220).all()  # the lower face, what tells a mask, is untouched
        assert (out[:, :8] == 220).all() and (out[:, -8:] == 220).all()  # glasses, not a band
    assert (augment(crop, rng, AugmentConfig(**{**still.__dict__, "sunglasses": 0})) == 220).all()


def test_sunglasses_flag_is_checked_and_names_only_the_runs_using_it(tmp_path):
    from training.distill import build_parser, run_key
    from training.distill_settings import check_settings

    parser = build_parser()
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "out")]
    args = parser.parse_args(base)
    key = run_key(args, "digest", ("mask", "no_mask"))
    args.sunglasses = 0.0
    assert run_key(args, "digest", ("mask", "no_mask")) == key  # earlier runs still resume
    with_glasses = parser.parse_args(base + ["--sunglasses", "0.3"])
    assert run_key(with_glasses, "digest", ("mask", "no_mask")) != key
    for bad in ("1.5", "nan", "-0.1"):
        args = parser.parse_args(base + ["--sunglasses", bad])
        args.input_size = 64  # resolved from the teacher before the check, in a real run
        with pytest.raises(ValueError, match="--sunglasses must lie in"):
            check_settings(args)


def test_label_smoothing_reaches_the_hard_loss():
    import torch

    from models.student import build_student
    from training.distillers import FixedVanillaKD

    loader = [(torch.zeros(2, 3, 32, 32), torch.tensor([0, 1]))]
    student = build_student(2)
    kd = FixedVanillaKD(
        build_student(2),
        student,
        loader,
        loader,
        torch.optim.SGD(student.parameters(), 0.1),
        torch.optim.SGD(student.parameters(), 0.1),
    )
    logits, label = torch.tensor([[4.0, -4.0]]), torch.tensor([0])
    sharp = kd.hard_loss(logits, label)
    kd.label_smoothing = 0.2
    assert kd.hard_loss(logits, label) > sharp + 0.3  # smoothing penalises overconfidence


def a_report_figure(out: Path) -> None:
    (out / "report").mkdir()
    (out / "report" / "curves.png").write_bytes(b"an earlier figure")


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        (lambda out: (out / "student.pt").mkdir(), ["--overwrite"], "student.pt is a folder"),
        (
            lambda out: (out / "report").write_text("notes"),
            [],
            "report is a file; the run writes its report folder",
        ),
        (a_report_figure, [], "already holds a report"),
        (lambda out: None, ["--negative-thresholds", "5", "-3", "nan"], "must lie in [0, 1]"),
        (lambda out: None, ["--negatives"], "--negatives needs --scenes"),
        (lambda out: None, ["--scenes", "/no/such/scenes"], "/no/such/scenes not found"),
        (lambda out: None, ["--scenes", str(FIXTURES)], "is not a scenes set (expected images/"),
        (lambda out: None, ["--scenes", str(FIXTURES / "mask_1.jpg")], "is a file, not a scenes"),
    ],
)
def test_distill_checks_every_output_before_any_work(tmp_path, capsys, setup, extra, message):
    """FIXTURES is no class-folder set: had the run gone on to prepare data, it would say so."""
    out = tmp_path / "out"
    out.mkdir()
    setup(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    argv = ["--data", str(FIXTURES), "--out", str(out), "--quiet", "--work-dir", str(tmp_path)]
    code = distill_main([*argv, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not (tmp_path / "prepared").exists()


def test_linked_subfolders_of_a_class_are_read_once(tmp_path, caplog):
    data = make_dataset(tmp_path / "data")
    elsewhere = tmp_path / "more masks"
    elsewhere.mkdir()
    shutil.copy(FIXTURES / "mask_1.jpg", elsewhere / "linked.jpg")
    (data / "with_mask" / "extra").symlink_to(elsewhere)
    (elsewhere / "loop").symlink_to(data / "with_mask")  # leads back: entered once only
    images = [path for path, label in find_images(data).images if label == "mask"]
    assert len(images) == 9 and data / "with_mask" / "extra" / "linked.jpg" in images
    assert "is read already" in caplog.text


def test_hidden_folders_and_notes_named_like_notes_are_not_read_as_photos(tmp_path):
    """A thumbnail cache inside with_mask/ holds copies, not labelled photos; a set's notes
    come under many names; a photo named like a note but with an image suffix is a photo."""
    data = make_dataset(tmp_path / "data")
    before = find_images(data).images
    thumbs = data / "with_mask" / ".thumbnails"
    thumbs.mkdir()
    shutil.copy(FIXTURES / "no_mask_1.jpg", thumbs / "thumb.jpg")
    notes = ["LICENSE-MIT", "COPYING.LESSER", "README.markdown", "CHANGELOG", "Readme ", "a.tsv"]
    for name in notes:
        (data / "with_mask" / name).write_text("notes")
    shutil.copy(FIXTURES / "mask_1.jpg", data / "with_mask" / "license.png")
    found = find_images(data)
    assert found.images == sorted(before + [(data / "with_mask" / "license.png", "mask")])
    assert sorted(p.name for p in found.skipped) == sorted(notes)


def test_a_link_up_the_tree_and_odd_entries_add_no_images(tmp_path, caplog):
    """A link from a class folder up to the dataset would list the other class's images
    under this one; pipes and broken links are named, not silently dropped."""
    import os

    data = make_dataset(tmp_path / "data")
    before = find_images(data).images
    (data / "with_mask" / "up").symlink_to(data)
    (data / "without_mask" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(data / "without_mask" / "pipe.jpg")
    after = find_images(data).images
    assert after == before
    assert "holds this class folder" in caplog.text
    assert (
        "gone.jpg: not a regular file" in caplog.text and "pipe.jpg: not a regular" in caplog.text
    )


def test_a_failure_while_saving_keeps_the_earlier_weights_and_report(tmp_path):
    """The outputs are checked before any work; one that breaks during the run (a folder
    appears where the report goes) fails the whole set: the earlier files all stay."""
    data, out, work = make_dataset(tmp_path / "data"), tmp_path / "out", tmp_path / "work"
    (out / "report").mkdir(parents=True)
    earlier = {"teacher.pt": "earlier teacher", "student.pt": "earlier student"}
    for name, text in earlier.items():
        (out / name).write_text(text)
    (out / "report" / "report.json").write_text('{"earlier": true}')
    proc = distill(
        *("--data", data, "--out", out, "--work-dir", work, "--overwrite"),
        *("--input-size", 32, "--batch-size", 8, "--teacher-epochs", 1, "--student-epochs", 1),
    )
    assert wait_for("manifest-*.json", work / "prepared", proc), proc.communicate()[1]
    (out / "report" / "report.md").mkdir()  # after the checks, before the run saves
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("training.distill: error: ") and "report.md" in last
    assert "no weights or report were written" in last and "Traceback" not in err
    assert {n: (out / n).read_text() for n in earlier} == earlier
    assert (out / "report" / "report.json").read_text() == '{"earlier": true}'
    assert sorted(p.name for p in (out / "report").iterdir()) == ["report.json", "report.md"]
    assert sorted(p.name for p in out.iterdir()) == ["report", "student.pt", "teacher.pt"]


def test_crop_rules_ask_stock_mtcnn_before_taking_the_whole_image():
    """A photo the app's detector passes is cropped at stock MTCNN's box, not taken whole."""
    rgb = read_rgb(FIXTURES / "no_mask_1.jpg")
    blind = FaceDetector(DetectorConfig(min_face_size=4000))  # no face that large fits
    stock = second_opinion_for(blind)
    assert stock is not None and stock.weights == "stock"
    assert second_opinion_for(stock) is None  # already stock: no second opinion
    crop, rule = face_crop_for_image(rgb, blind, CropConfig())
    assert rule == "no_face_whole_image" and crop.shape == rgb.shape
    crop, rule = face_crop_for_image(rgb, blind, CropConfig(), stock)
    assert rule == "stock_face"
    direct, direct_rule = face_crop_for_image(rgb, stock, CropConfig())
    assert direct_rule == "one_face" and np.array_equal(crop, direct)
    assert crop.shape[0] < rgb.shape[0] * 0.9  # a face crop, smaller than the photo
    grey = np.full((160, 160, 3), 127, dtype=np.uint8)
    crop, rule = face_crop_for_image(grey, blind, CropConfig(), stock)
    assert rule == "no_face_whole_image" and crop.shape == grey.shape


def test_a_box_on_a_part_of_the_face_gives_way_to_stock_mtcnns_whole_face():
    """On a photo a masked face fills, the tuned nets box a spectacle lens; training and
    evaluation crop stock MTCNN's face around it instead, counted under part_of_face. The
    app's detector, with its stock pass for near faces, boxes that face itself."""
    rgb = read_rgb(FIXTURES / "masked_with_glasses.jpg")  # 173 x 203, the face fills it
    [face] = FaceDetector(DetectorConfig()).detect(rgb)
    tuned = FaceDetector(DetectorConfig(near_face=0))
    [lens] = tuned.detect(rgb)
    assert part_of(lens.box, face.box)
    assert max(lens.box[2] - lens.box[0], lens.box[3] - lens.box[1]) < 0.35 * 173
    crop, rule = face_crop_for_image(rgb, tuned, CropConfig())  # no second opinion: the lens
    assert rule == "one_face" and crop.shape[0] < 80
    crop, rule = face_crop_for_image(rgb, tuned, CropConfig(), second_opinion_for(tuned))
    assert rule == "part_of_face" and crop.shape[:2] == rgb.shape[:2]  # the face, clipped
    # small faces of a street photo, which stock MTCNN finds as small, keep the tuned box
    street = read_rgb(FIXTURES / "maksssksksss129.jpg")
    crop, rule = face_crop_for_image(street, tuned, CropConfig(), second_opinion_for(tuned))
    assert rule == "several_faces" and crop.shape[:2] == (36, 36)


def test_a_teacher_that_cannot_serve_the_run_is_refused_before_any_cropping(tmp_path, capsys):
    data, work = make_dataset(tmp_path / "data"), tmp_path / "work"
    teacher = ROOT / "models" / "teacher.pt"  # mask / no_mask / not_face, 64 px crops
    common = ["--data", str(data), "--teacher", str(teacher), "--work-dir", str(work)]
    common += ["--out", str(tmp_path / "out"), "--quiet"]
    for extra, message in (
        ([], "this run needs ('mask', 'no_mask'); add --negatives --scenes DIR"),
        (
            ["--scenes", str(FIXTURES), "--negatives", "--input-size", "96"],
            "trained on 64 px crops; distil with --input-size 64",
        ),
    ):
        assert distill_main(common + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not work.exists() and not (tmp_path / "out").exists()


def test_without_input_size_the_student_takes_the_teachers():
    from training.distill_settings import trained_teacher

    teacher = ROOT / "models" / "teacher.pt"  # 64 px crops
    args = build_parser().parse_args(["--data", "d", "--teacher", str(teacher), "--negatives"])
    assert args.input_size is None
    trained_teacher(args)
    assert args.input_size == 64


def test_a_fresh_run_keeps_an_interrupted_runs_state_aside(tmp_path, caplog):
    from training.run_state import set_aside

    state = tmp_path / "vanilla-seed0-abc"
    assert set_aside(state) is None
    state.mkdir()
    (state / "teacher-state.pt").write_bytes(b"twelve epochs of work")
    aside = set_aside(state)
    assert aside == tmp_path / "vanilla-seed0-abc-interrupted" and not state.exists()
    assert (aside / "teacher-state.pt").read_bytes() == b"twelve epochs of work"
    assert "stop this run and run again with --resume" in caplog.text


def test_resume_takes_back_the_state_a_fresh_run_set_aside(tmp_path, caplog):
    """A run without --resume set the interrupted state aside and then finished or was
    stopped before saving its own: --resume continues the one set aside."""
    from training.run_state import set_aside, take_back

    state = tmp_path / "vanilla-seed0-abc"
    state.mkdir()
    (state / "teacher-state.pt").write_bytes(b"twelve epochs of work")
    set_aside(state)
    assert take_back(state) is True
    assert (state / "teacher-state.pt").read_bytes() == b"twelve epochs of work"
    assert "continuing the interrupted run that was set aside in" in caplog.text
    assert take_back(state) is False  # nothing set aside now


def test_a_run_stopped_before_its_first_epoch_neither_hides_nor_replaces_the_one_set_aside(
    tmp_path,
):
    """Stopped after two epochs, then a fresh run stopped before its first: its folder (the
    settings alone) neither replaces the two epochs set aside, nor keeps --resume from them."""
    from training.run_state import record_settings, set_aside, take_back

    state = tmp_path / "vanilla-seed0-abc"
    state.mkdir()
    (state / "student-state.pt").write_bytes(b"two epochs of work")
    aside = set_aside(state)
    record_settings(state, {"--method": "vanilla"})  # the fresh run, stopped at once
    assert set_aside(state) is None and not state.exists()  # a third, fresh run
    assert (aside / "student-state.pt").read_bytes() == b"two epochs of work"
    record_settings(state, {"--method": "vanilla"})
    assert take_back(state) is True
    assert (state / "student-state.pt").read_bytes() == b"two epochs of work"


def test_a_state_folder_is_held_by_one_run_at_a_time(tmp_path):
    """Two runs sharing --work-dir with the same settings: the second is refused instead of
    moving aside, then deleting, the state of the first, which is still training."""
    from training.run_state import StateInUseError, state_lock

    state = tmp_path / "train-state" / "vanilla-seed0-abc"
    with state_lock(state):
        with pytest.raises(StateInUseError, match="another training run .* is using"):
            with state_lock(state):
                pass
        assert not state.exists()  # the lock sits beside the folder, not in it
    with state_lock(state):  # free again once the first run ends
        pass


def test_resume_with_other_settings_names_the_kept_run_and_what_differs(tmp_path):
    from training.distill import run_settings
    from training.run_state import other_runs, record_settings, run_key

    names = ("mask", "no_mask")
    interrupted = run_settings(build_parser().parse_args(["--data", "d"]), "crops", names)
    now = run_settings(
        build_parser().parse_args(["--data", "d", "--student-epochs", "25"]), "crops", names
    )
    states = tmp_path / "train-state"
    record_settings(states / (run_key(interrupted) + "-interrupted"), interrupted)
    (states / "self-training-seed0-0123456789").mkdir()  # another method: not named
    said = other_runs(states / run_key(now), now)
    epochs = interrupted["--student-epochs"]
    assert said == [
        f"{states / run_key(interrupted)}-interrupted (differs in --student-epochs: "
        f"{epochs!r} there)"
    ]
    # a setting only one of the two names is said too: a trial's --limit, here
    trial = run_settings(build_parser().parse_args(["--data", "d", "--limit", "40"]), "x", names)
    record_settings(states / run_key(trial), trial)
    said = other_runs(states / run_key(interrupted), interrupted)
    assert f"{states / run_key(trial)} (differs in data: 'x' there, --limit: 40 there)" in said


@pytest.mark.parametrize(
    "changed, said",
    [
        (["--seed", "5"], "--seed: 0 there"),
        (["--method", "self-training"], "--method: 'vanilla' there"),
    ],
)
def test_resume_with_another_seed_or_method_names_the_kept_run(tmp_path, capsys, changed, said):
    """A run kept at another --seed or --method is what a --resume that finds none of its
    own was most likely meant for: refused, before any cropping, as other settings are."""
    from training.distill import run_settings
    from training.run_state import record_settings, run_key

    data, work = make_dataset(tmp_path / "data"), tmp_path / "work"
    flags = ["--data", str(data), "--work-dir", str(work), "--out", str(tmp_path / "out")]
    flags += ["--input-size", "32", "--teacher-epochs", "4", "--student-epochs", "4"]
    kept = run_settings(build_parser().parse_args(flags), "crops", ("mask", "no_mask"))
    state = work / "train-state" / run_key(kept)
    record_settings(state, kept)
    (state / "teacher-state.pt").write_bytes(b"two epochs of work")

    assert distill_main([*flags, "--quiet", "--resume", *changed]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("training.distill: error: --resume: no interrupted run"), last
    assert f"{state} (differs in {said})" in last
    assert "starting anew" not in err and "data: {" not in err  # refused before cropping
    assert (state / "teacher-state.pt").exists() and not (tmp_path / "out").exists()


def test_runs_of_another_seed_or_method_are_named_only_when_none_of_its_own_is_kept(tmp_path):
    from training.distill import run_settings
    from training.run_state import other_runs, record_settings, run_key

    def settings(*flags: str) -> dict:
        args = build_parser().parse_args(["--data", "d", *flags])
        return run_settings(args, "crops", ("mask", "no_mask"))

    seed0, seed5 = settings(), settings("--seed", "5")
    states = tmp_path / "train-state"
    record_settings(states / run_key(seed0), seed0)
    old = states / "self-training-seed5-0123456789-interrupted"  # kept before run.json
    old.mkdir()
    (states / "notes").mkdir()  # not a run's folder: never named
    assert other_runs(states / run_key(seed5), seed5) == [
        f"{old} (differs in --method: 'self-training' there)",
        f"{states / run_key(seed0)} (differs in --seed: 0 there)",
    ]

    other_lr = settings("--seed", "5", "--lr", "0.01")  # now one of its method and seed
    record_settings(states / run_key(other_lr), other_lr)
    assert other_runs(states / run_key(seed5), seed5) == [
        f"{states / run_key(other_lr)} (differs in --lr: 0.01 there)"
    ]


def test_one_class_names_the_folder_to_add(tmp_path):
    from training.dataset_files import DatasetError, find_images

    data = make_dataset(tmp_path / "data")
    shutil.rmtree(data / "without_mask")
    with pytest.raises(DatasetError, match="has only one class; add a without_mask/ folder for"):
        find_images(data)


def test_a_stop_before_the_first_epoch_says_the_run_set_aside_is_still_there(
    tmp_path, monkeypatch, capsys
):
    """A fresh run set an interrupted one aside and was stopped before an epoch of its own:
    the earlier run's epochs are what --resume continues, so 'nothing to resume' is wrong."""
    from training import distill
    from training.run_state import aside_of

    state = tmp_path / "work" / "train-state" / "vanilla-seed0-abc"
    aside_of(state).mkdir(parents=True)
    (aside_of(state) / "student-state.pt").write_bytes(b"four epochs")

    def stopped_at_once(args):  # where a Ctrl-C during the fresh run's first epoch lands
        args.state_dir = state
        raise KeyboardInterrupt

    monkeypatch.setattr(distill, "train", stopped_at_once)
    assert distill.main(["--data", str(make_dataset(tmp_path / "data")), "--quiet"]) == 130
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said == (
        "training.distill: interrupted before any epoch of this run finished; the earlier run "
        f"kept in {aside_of(state)} is still there: run again with --resume to continue it"
    )


def test_a_state_not_saved_before_any_epoch_names_the_run_set_aside(tmp_path, monkeypatch, capsys):
    """A fresh run set an interrupted one aside and could not save its own first epoch:
    --resume would go on with the earlier run, not train anew, and the line says so."""
    import errno

    from training import distill
    from training.distillers import StateNotSavedError
    from training.run_state import aside_of

    state = tmp_path / "work" / "train-state" / "vanilla-seed0-abc"
    state.mkdir(parents=True)
    aside_of(state).mkdir()
    (aside_of(state) / "student-state.pt").write_bytes(b"four epochs")
    full = OSError(errno.ENOSPC, "No space left on device")

    def full_at_once(args):  # where a full disk in the fresh run's first epoch lands
        args.state_dir = state
        raise StateNotSavedError("student", 1, state / "student-state.pt", full)

    monkeypatch.setattr(distill, "train", full_at_once)
    assert distill.main(["--data", str(make_dataset(tmp_path / "data")), "--quiet"]) == 1
    (said,) = capsys.readouterr().err.strip().splitlines()
    assert said == (
        f"training.distill: error: could not save the student state of epoch 1 to "
        f"{state / 'student-state.pt'} (No space left on device); nothing of this run is kept, "
        f"so --resume would go on with the earlier run kept in {aside_of(state)}; free space "
        f"on the disk of {state} first"
    )


def _all_scenes_train(monkeypatch):
    from training import scene_crops

    monkeypatch.setattr(
        scene_crops, "split_scenes", lambda pairs, seed: {p.image.stem: "train" for p in pairs}
    )
    return scene_crops


def test_scene_crops_are_made_anew_when_an_annotation_is_edited(tmp_path, monkeypatch):
    scene_crops = _all_scenes_train(monkeypatch)
    scenes, names = scenes_copy(tmp_path / "scenes"), ("mask", "no_mask")
    _, labels, _ = scene_crops.scene_training_crops(scenes, names, tmp_path / "c", progress=False)
    xml = scenes / "annotations" / "maksssksksss129.xml"  # its one with_mask face relabelled
    xml.write_text(xml.read_text().replace(">with_mask<", ">without_mask<"))
    _, edited, _ = scene_crops.scene_training_crops(scenes, names, tmp_path / "c", progress=False)
    _, fresh, _ = scene_crops.scene_training_crops(scenes, names, tmp_path / "new", progress=False)
    assert edited.tolist() == fresh.tolist()
    assert (edited == 0).sum() == (labels == 0).sum() - 1
    assert len(list((tmp_path / "c").glob("scene-crops-*.npz"))) == 2


def test_unreadable_training_scenes_are_warned_of_fresh_and_cached(tmp_path, monkeypatch, caplog):
    scene_crops = _all_scenes_train(monkeypatch)
    scenes, names = scenes_copy(tmp_path / "scenes"), ("mask", "no_mask")
    truncated = scenes / "annotations" / "maksssksksss129.xml"
    truncated.write_text(truncated.read_text()[:200])
    no_width = scenes / "annotations" / "maksssksksss289.xml"
    no_width.write_text(no_width.read_text().replace("<width>267</width>", "<width></width>"))
    for _ in range(2):  # cropped, then read from the cache
        caplog.clear()
        stats = scene_crops.scene_training_crops(scenes, names, tmp_path / "c", progress=False)[2]
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warned == stats["unreadable"] and len(warned) == 2
        assert "cannot read annotation" in warned[0] and "129.xml" in warned[0]
        assert "<width> is ''" in warned[1]


def test_many_unreadable_scenes_are_counted_in_one_line(caplog):
    from training.scene_crops import warn_unreadable

    warn_unreadable([f"cannot read annotation a{k}.xml: no element found" for k in range(9)])
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert line.startswith("9 training scenes left out") and "a4.xml" in line
    assert "a5.xml" not in line


def test_a_link_into_the_other_class_folder_is_not_followed(tmp_path, caplog):
    data = make_dataset(tmp_path / "data")
    before = find_images(data).images
    (data / "with_mask" / "other").symlink_to("../without_mask")
    assert find_images(data).images == before
    assert "with_mask/other: it leads into" in caplog.text
    assert "another class folder of this set" in caplog.text


def test_one_file_under_both_labels_is_left_out_of_both(tmp_path, caplog):
    import os

    data = make_dataset(tmp_path / "data")
    photo = data / "without_mask" / 'no_mask_1 0\'s "copy".png'
    other = data / "without_mask" / 'no_mask_2 0\'s "copy".png'
    (data / "with_mask" / "linked.png").symlink_to(photo)
    os.link(other, data / "with_mask" / "hard.png")
    found = find_images(data)
    files = [path for path, _ in found.images]
    assert len(files) == 14  # 8 + 8 + 2 links, less the 4 that are two photos
    assert not {photo, other, data / "with_mask" / "linked.png"} & set(files)
    assert len(found.left_out) == 4 and "both labels" in found.left_out[0]
    assert "left out 4 files that are one photo under both mask and no_mask" in caplog.text


def test_a_folder_linked_into_its_own_class_is_counted_once(tmp_path, caplog):
    data = make_dataset(tmp_path / "data")
    (data / "masked").symlink_to("with_mask")  # another name of the mask class, same photos
    found = find_images(data)
    assert len(found.images) == 16 and not found.left_out
    assert len({(p.stat().st_dev, p.stat().st_ino) for p, _ in found.images}) == 16
    assert "counted once 8 files reached twice in one class" in caplog.text


def test_a_file_name_that_is_not_utf8_is_skipped_and_named(tmp_path, caplog):
    import os

    data = make_dataset(tmp_path / "data")
    bad = Path(os.fsdecode(os.fsencode(data / "with_mask") + b"/bad\xff.jpg"))
    shutil.copy(FIXTURES / "mask_1.jpg", bad)
    prepared = prepare(data, tmp_path / "cache", seed=0, progress=False)
    assert prepared.stats["used"] == 16 and str(bad) not in prepared.files
    said = f"{data}/with_mask/bad\\xff.jpg: the name is not valid UTF-8; rename the file"
    assert prepared.stats["left_out"] == [said]
    assert f"skipped {said}" in caplog.text
