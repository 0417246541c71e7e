"""Train the teacher from scratch and distil the student: ``python -m training.distill``.

Faces are cropped by the app's own detector, near-duplicates grouped before a seeded split,
and the best weights by validation accuracy saved with their metadata and a report.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import random
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from app.atomic import describe_error
from app.config import DetectorConfig
from app.console import error, exit_status, guard_streams, log_to_stderr, say, tell
from app.digest import file_digest
from app.flags import (
    OneLineParser,
    input_path,
    output_folder,
    seed,
    training_device,
)
from app.stop_signals import stop_message, stop_signals_raise
from models import checkpoint
from models import student as student_net
from models.checkpoint import CheckpointError, ModelMeta, count_parameters
from training import run_state
from training.augment import AugmentConfig, CropDataset
from training.dataset_files import DatasetError
from training.distill_settings import (
    DEFAULT_INPUT_SIZE,
    DEFAULT_TEACHER_EPOCHS,
    MIN_INPUT_SIZE,
    NEGATIVE_DETECTOR,
    check_outputs,
    check_settings,
    check_teacher_source,
    trained_teacher,
)
from training.distillers import DISTILLERS, DivergedError, StateNotSavedError, as_device
from training.metrics import classification_report
from training.outputs import (
    OutputSet,
    OutputsNotWrittenError,
    WorkNotSavedError,
    describe_output_error,
)
from training.prepare import Prepared, prepare
from training.report import write_report
from training.run_state import StateInUseError
from training.scene_crops import scene_training_crops
from training.speed import crops_per_second
from training.voc import require_scenes_layout

PROG = "training.distill"  # how its one-line complaints begin
log = logging.getLogger(PROG)


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    test: DataLoader


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training.distill", description=__doc__)
    p.add_argument(
        "--data", type=input_path, required=True, help="folder with with_mask/ and without_mask/"
    )
    p.add_argument(
        "--out",
        type=output_folder,
        default=checkpoint.MODEL_DIR,
        help="where teacher.pt, student.pt and the report go (default models/)",
    )
    p.add_argument("--method", choices=sorted(DISTILLERS), default="vanilla")
    p.add_argument(
        "--teacher-epochs",
        type=int,
        help=f"epochs of the teacher trained here (default {DEFAULT_TEACHER_EPOCHS}; not with "
        "--teacher, which is used as it is)",
    )
    p.add_argument("--student-epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate for both")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--distil-weight", type=float, default=0.7)
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=0.1,
        help="smoothing of the hard-label loss (default 0.1)",
    )
    p.add_argument(
        "--input-size",
        type=int,
        help=f"crop side in pixels, {MIN_INPUT_SIZE} to {checkpoint.INPUT_SIZES[1]} "
        "(default: the --teacher's, "
        f"else {DEFAULT_INPUT_SIZE})",
    )
    p.add_argument(
        "--student-width",
        type=int,
        default=student_net.DEFAULT_WIDTH,
        help=f"the student's channel width (default {student_net.DEFAULT_WIDTH}; its "
        "parameters grow with the square of it)",
    )
    p.add_argument(
        "--hue",
        type=float,
        default=0.0,
        metavar="DEG",
        help="shift every training crop's hue by up to this many degrees (default 0)",
    )
    p.add_argument(
        "--grey",
        type=float,
        default=0.0,
        metavar="P",
        help="drop a training crop's colour with this probability (default 0)",
    )
    p.add_argument(
        "--sunglasses",
        type=float,
        default=0.0,
        metavar="P",
        help="draw dark glasses over a training crop's eyes with this probability, so that "
        "glasses count for neither class (default 0)",
    )
    p.add_argument(
        "--device", default="auto", type=training_device, help="auto, cpu, cuda, cuda:N or mps"
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="at most N images of each class of --data, evenly spread, for a quick trial "
        "(default: all)",
    )
    p.add_argument("--teacher", type=input_path, help="distil from this trained teacher instead")
    p.add_argument(
        "--scenes",
        type=input_path,
        help="also train on the face crops of this scenes set's train split",
    )
    p.add_argument(
        "--negatives",
        action="store_true",
        help="with --scenes: add the detector's false boxes there as a third "
        "class, not_face, which the app then drops",
    )
    p.add_argument(
        "--negative-thresholds",
        type=float,
        nargs=3,
        default=NEGATIVE_DETECTOR.thresholds,
        metavar=("P", "R", "O"),
        help="MTCNN thresholds used to find false boxes",
    )
    p.add_argument(
        "--work-dir",
        type=output_folder,
        default=Path(".cache"),
        help="prepared crops and per-epoch training state (default .cache/)",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace existing weights in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def make_loaders(
    prepared,
    input_size: int,
    batch_size: int,
    seed: int,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    augment_cfg: AugmentConfig | None = None,
) -> Loaders:
    """Loaders of the three splits; ``extra`` crops and labels join the training split only."""
    mean, std = checkpoint.IMAGENET_MEAN, checkpoint.IMAGENET_STD

    def arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
        crops, labels = prepared.subset(split)
        if len(crops) == 0:
            raise DatasetError(
                f"the {split} split is empty: {len(prepared.labels)} usable images are too few "
                "to split into train, val and test (use a few dozen per class at least)"
            )
        if split == "train" and extra is not None and len(extra[0]):
            crops, labels = np.concatenate([crops, extra[0]]), np.concatenate([labels, extra[1]])
        return crops, labels

    train_crops, train_labels = arrays("train")
    generator = torch.Generator().manual_seed(seed)
    return Loaders(
        DataLoader(
            CropDataset(
                train_crops,
                train_labels,
                input_size,
                mean,
                std,
                augment_cfg or AugmentConfig(),
                seed,
            ),
            batch_size,
            shuffle=True,
            generator=generator,
            drop_last=len(train_crops) > batch_size,
        ),
        DataLoader(CropDataset(*arrays("val"), input_size, mean, std), 128),
        DataLoader(CropDataset(*arrays("test"), input_size, mean, std), 128),
    )


@torch.no_grad()
def test_figures(model, loader, device, class_names) -> dict:
    model.eval()
    truth, guess = [], []
    for data, target in loader:
        guess += model(data.to(device)).argmax(1).cpu().tolist()
        truth += target.tolist()
    return classification_report(truth, guess, class_names)


def data_digest(*arrays: np.ndarray) -> str:
    """SHA-1 of the arrays a run learns from: crops, labels, splits and any scene crops."""
    digest = hashlib.sha1()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def run_settings(args: argparse.Namespace, data: str, class_names: tuple[str, ...]) -> dict:
    """The data digest, the teacher and every setting that changes the weights, by name.

    They name a run's state folder (``run_state.run_key``), so that ``--resume`` only ever
    continues the very same run; device and output folder are left out.
    """
    if args.teacher:
        teacher = f"teacher file {file_digest(args.teacher)}"
    else:
        teacher = f"teacher trained for {args.teacher_epochs} epochs"
    settings = {
        "data": data,
        "classes": class_names,
        "--method": args.method,
        "--seed": args.seed,
        "teacher": teacher,
        "--student-epochs": args.student_epochs,
        "--lr": args.lr,
        "--temperature": args.temperature,
        "--distil-weight": args.distil_weight,
        "--batch-size": args.batch_size,
        "--input-size": args.input_size,
        "--student-width": args.student_width,
        "--label-smoothing": args.label_smoothing,
        "--hue": args.hue,
        "--grey": args.grey,
    }
    if args.sunglasses:  # named only when used, so earlier runs keep their state folders
        settings["--sunglasses"] = args.sunglasses
    if args.limit is not None:  # the data digest holds it too; this names it to the user
        settings["--limit"] = args.limit
    return settings


def run_key(args: argparse.Namespace, data: str, class_names: tuple[str, ...]) -> str:
    """The folder name of one run's training state."""
    return run_state.run_key(run_settings(args, data, class_names))


@dataclass
class TrainingData:
    """The prepared face crops, the scene crops added to them, and the digest a run's
    state and report are keyed by."""

    prepared: Prepared
    class_names: tuple[str, ...]
    extra: tuple[np.ndarray, np.ndarray] | None  # scene crops and labels, with --scenes
    scene_stats: dict | None
    digest: str


def training_data(args: argparse.Namespace, device: torch.device) -> TrainingData:
    """Crop (or read back from ``--work-dir``) what a run with ``args`` learns from. The
    comparison of methods calls this too, so that a resumed comparison sees the same digest."""
    prepared = prepare(
        args.data,
        args.work_dir / "prepared",
        args.seed,
        device,
        progress=not args.quiet,
        limit=args.limit,
    )
    log.info("data: %s", prepared.stats["split_sizes"])
    class_names = prepared.class_names + (("not_face",) if args.negatives else ())
    extra, scene_stats = None, None
    if args.scenes:
        negatives = None
        if args.negatives:
            negatives = DetectorConfig(
                thresholds=tuple(args.negative_thresholds),
                min_face_size=NEGATIVE_DETECTOR.min_face_size,
                # the O-Net threshold is the score cut too, so low thresholds find more boxes
                min_score=min(NEGATIVE_DETECTOR.min_score, args.negative_thresholds[2]),
            )
        crops, labels, scene_stats = scene_training_crops(
            args.scenes,
            class_names,
            args.work_dir / "prepared",
            args.seed,
            negatives,
            device,
            progress=not args.quiet,
        )
        extra = (crops, labels)
        log.info("scene crops added to training: %s", scene_stats["crops"])
    digest = data_digest(prepared.crops, prepared.labels, prepared.splits, *(extra or ()))
    return TrainingData(prepared, class_names, extra, scene_stats, digest)


def not_resumable(args: argparse.Namespace, others: list[str]) -> ValueError:
    """The refusal of a --resume whose settings match no kept run (``others``: those kept)."""
    return ValueError(
        f"--resume: no interrupted run with these data, teacher and settings in "
        f"{args.work_dir}; kept runs with other settings: {'; '.join(others)}. Give "
        "the same flags as that run, or leave out --resume to start anew"
    )


def train(args: argparse.Namespace) -> dict:
    """Prepare the data, train (or load) the teacher, distil the student, write the outputs;
    the report. The run's state folder is held for this run alone until it ends."""
    with contextlib.ExitStack() as held:
        return _train(args, held)


def _train(args: argparse.Namespace, held: contextlib.ExitStack) -> dict:
    check_teacher_source(args)
    teacher = trained_teacher(args) if args.teacher else None
    if args.input_size is None:
        args.input_size = DEFAULT_INPUT_SIZE
    check_settings(args)
    check_outputs(args)
    if args.scenes:
        require_scenes_layout(args.scenes)  # now, not after the faces are cropped
    device = as_device(args.device)
    if args.resume:  # a run that cannot match is refused now, not after the cropping
        early = run_settings(args, "(not read yet)", ())
        unknown = ("data", "classes")
        if others := run_state.none_resumable(run_state.states_in(args.work_dir), early, unknown):
            raise not_resumable(args, others)
    data = training_data(args, device)
    # Seeded after the crops: cropping afresh draws numbers that reading them back does not,
    # and the same seed must give the same figures either way (and in any --methods order).
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)  # KD_Lib's noisy methods draw from Python's generator
    prepared, class_names, extra = data.prepared, data.class_names, data.extra
    augment_cfg = AugmentConfig(hue_deg=args.hue, grey=args.grey, sunglasses=args.sunglasses)
    loaders = make_loaders(
        prepared, args.input_size, args.batch_size, args.seed, extra, augment_cfg
    )

    if teacher is None:
        teacher = checkpoint.build("teacher", len(class_names))
    student = checkpoint.build("student", len(class_names), args.student_width)
    opt_teacher = torch.optim.AdamW(teacher.parameters(), lr=args.lr, weight_decay=1e-4)
    opt_student = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=1e-4)
    options = {"temp": args.temperature, "distil_weight": args.distil_weight}
    # Self-training needs no teacher for the student; the app's teacher is still trained,
    # by the vanilla trainer.
    teacher_method = "vanilla" if args.method == "self-training" else args.method
    teacher_trainer = DISTILLERS[teacher_method](
        teacher, student, loaders.train, loaders.val, opt_teacher, opt_student, device, **options
    )
    student_trainer = teacher_trainer
    if args.method == "self-training":
        student_trainer = DISTILLERS["self-training"](
            student, loaders.train, loaders.val, opt_student, device, **options
        )
    settings = run_settings(args, data.digest, class_names)
    state_dir = run_state.states_in(args.work_dir) / run_state.run_key(settings)
    held.enter_context(run_state.state_lock(state_dir))
    args.state_dir = state_dir  # for main's word on what a stop leaves to resume
    if args.resume:
        run_state.take_back(state_dir)
    if args.resume and not state_dir.exists():
        # A kept run with other settings means a flag changed by mistake, most likely:
        # refuse, rather than train hours anew. With no kept run at all, start anew.
        if others := run_state.other_runs(state_dir, settings):
            raise not_resumable(args, others)
        log.warning("--resume: no interrupted run in %s; starting anew", args.work_dir)
    if not args.resume:  # a fresh run never mixes in old state, nor throws it away
        run_state.set_aside(state_dir)
    run_state.record_settings(state_dir, settings)
    for trainer in {
        id(teacher_trainer): teacher_trainer,
        id(student_trainer): student_trainer,
    }.values():
        trainer.progress, trainer.resume, trainer.checkpoint_dir = (
            not args.quiet,
            args.resume,
            state_dir,
        )
        trainer.label_smoothing = args.label_smoothing
    teacher_trainer.schedulers["teacher"] = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt_teacher,
        max(args.teacher_epochs or 1, 1),  # None: a given --teacher, not trained
    )
    student_trainer.schedulers["student"] = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt_student, max(args.student_epochs, 1)
    )

    if not args.teacher:
        teacher_trainer.train_teacher(epochs=args.teacher_epochs)
    student_trainer.train_student(epochs=args.student_epochs)

    history = {**teacher_trainer.history, **student_trainer.history}
    given = getattr(args, "argv", None)  # what main() was given, when another command ran it
    given = sys.argv[1:] if given is None else given
    command = "python -m training.distill " + " ".join(shlex.quote(a) for a in given)
    results, models_report = {}, {}
    for role, model in (("teacher", teacher), ("student", student)):
        model = model.to(device)
        figures = test_figures(model, loaders.test, device, class_names)
        results[role] = figures
        models_report[role] = {
            "parameters": count_parameters(model),
            "test": figures,
            "best_val_acc": max((r["val_acc"] for r in history.get(role, [])), default=None),
            "crops_per_s": crops_per_second(model, args.input_size, 32, device),
        }
    report = {
        "method": args.method,
        "command": command,
        "data": str(args.data),
        "data_stats": prepared.stats,
        "scene_crops": data.scene_stats,
        "device": str(device),
        "seed": args.seed,
        "class_names": list(class_names),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "settings": json.loads(json.dumps(settings)),  # what --resume and a comparison match
        "models": models_report,
        "param_ratio": (
            models_report["student"]["parameters"] / models_report["teacher"]["parameters"]
        ),
    }
    models = {"student": student} if args.teacher else {"teacher": teacher, "student": student}
    write_outputs(args, models, models_report, class_names, command, report, history, results)
    try:  # a finished run is never resumed, so its state would only mislead a later --resume
        shutil.rmtree(state_dir)
    except OSError as exc:
        log.warning("could not remove the finished run's state %s: %s", state_dir, exc)
    return report


def write_outputs(
    args, models, models_report, class_names, command, report, history, results
) -> None:
    """Save the weights and the report as one set: all are placed, or none and the earlier
    files stay (a failure here comes after all the training, so it is not a user error).

    Raises:
        OutputsNotWrittenError: naming what failed.
    """
    out = Path(args.out)
    data = str(args.data) + (f" + {args.scenes} (train split)" if args.scenes else "")
    try:
        with OutputSet(args.overwrite) as outputs:  # folders made only now, removed on failure
            for role, model in models.items():
                r = models_report[role]
                meta = ModelMeta(
                    arch=role,
                    class_names=class_names,
                    input_size=args.input_size,
                    data=data,
                    command=command,
                    scores={"test": r["test"], "best_val_acc": r["best_val_acc"]},
                    extra={"method": args.method, "seed": args.seed, "parameters": r["parameters"]},
                )
                checkpoint.save(outputs.path(out / f"{role}.pt"), model.cpu(), meta)
            write_report(out / "report", report, history, results, outputs)
            outputs.commit()
    except OSError as exc:
        raise OutputsNotWrittenError(
            f"{describe_output_error(exc)}; no weights or report were written, {out} is as it was"
        ) from exc


def state_not_saved(exc: StateNotSavedError, state: Path | None) -> str:
    """The line for an epoch state that could not be saved: the distiller's, unless this
    run kept no epoch at all and set an earlier run's state aside, which --resume would
    then go on with (``run_state.take_back``)."""
    if state is None or run_state.has_epochs(state):
        return str(exc)
    aside = run_state.aside_of(state)
    if not run_state.has_epochs(aside):
        return str(exc)
    return (
        f"{exc.failure}; nothing of this run is kept, so --resume would go on with the "
        f"earlier run kept in {aside}{exc.remedy}"
    )


def main(argv: list[str] | None = None, name: str = PROG) -> int:
    """Run distill on ``argv`` (the command line when None); its exit status. ``name``
    begins its one-line complaints: another command that runs it gives its own, so that no
    line names a command the user never ran."""
    guard_streams()
    args = build_parser().parse_args(argv)
    args.argv = None if argv is None else [str(a) for a in argv]  # the report's command
    log_to_stderr(logging.INFO)
    try:
        with stop_signals_raise():
            report = train(args)
    except StateNotSavedError as exc:
        error(name, state_not_saved(exc, getattr(args, "state_dir", None)))
        return 1
    except (OutputsNotWrittenError, WorkNotSavedError) as exc:
        error(name, str(exc))
        return 1
    except (DatasetError, CheckpointError, ValueError, OSError, StateInUseError) as exc:
        error(name, describe_error(exc))
        return 2
    except DivergedError as exc:
        error(name, f"{exc}; try a lower --lr")
        return 2
    except KeyboardInterrupt as exc:
        said, status = stop_message(exc)
        state = getattr(args, "state_dir", None)
        if state is not None and run_state.has_epochs(state):
            tell(name, f"{said}; run again with --resume to continue")
        elif state is not None and run_state.has_epochs(run_state.aside_of(state)):
            tell(
                name,
                f"{said} before any epoch of this run finished; the earlier run kept in "
                f"{run_state.aside_of(state)} is still there: run again with --resume to "
                "continue it",
            )
        else:
            tell(name, f"{said} before any epoch finished; nothing to resume yet")
        return status
    for role, r in report["models"].items():
        say(
            f"{role}: test accuracy {r['test']['accuracy']:.4f}, "
            f"{r['parameters']:,} parameters, {r['crops_per_s']:.0f} crops/s"
        )
    say(f"weights and report in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main(), PROG))
