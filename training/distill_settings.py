"""The settings of a distillation run: its defaults, and the refusals made before any work
(numbers that cannot train, a teacher that cannot serve the run, outputs that could not be
written at the end), so a run that would fail after minutes of cropping fails at once."""

from __future__ import annotations

import argparse
import errno
import math
import os
from pathlib import Path

import torch

from app.atomic import OutputExistsError
from app.config import DetectorConfig
from app.flags import FlagValueError, require_counts
from models import CLASS_NAMES, checkpoint
from models import student as student_net
from models.checkpoint import CheckpointError
from models.file_kind import model_kind
from training.outputs import refuse_inside
from training.report import REPORT_FILES

DEFAULT_INPUT_SIZE = 96
DEFAULT_TEACHER_EPOCHS = 30
MIN_INPUT_SIZE = 32  # DenseNet-121 shrinks its input 32 times; smaller crops end in 0x0 maps
MIN_LIMIT = 20  # images per class under --limit: train, val and test each need some
# The sensitive detector settings whose false boxes become not_face examples.
NEGATIVE_DETECTOR = DetectorConfig(thresholds=(0.4, 0.5, 0.5), min_face_size=12, min_score=0.5)


def check_folder_creatable(folder: Path) -> None:
    """Fail before any training when ``folder`` could not be created or written later."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {folder}: {existing} is not writable")


def check_teacher_source(args: argparse.Namespace) -> None:
    """A teacher trained here (``--teacher-epochs``, default 30) or a trained ``--teacher``,
    not both; checked before that teacher file is read."""
    if args.teacher and args.teacher_epochs is not None:
        raise FlagValueError(
            "--teacher-epochs trains a new teacher, --teacher uses a trained one: give one of them"
        )
    if args.teacher_epochs is None and not args.teacher:
        args.teacher_epochs = DEFAULT_TEACHER_EPOCHS
    if not args.teacher and args.teacher_epochs < 1:
        raise FlagValueError("--teacher-epochs must be at least 1 (or give a trained --teacher)")


def check_settings(args: argparse.Namespace) -> None:
    """Refuse numbers that cannot train (a NaN temperature trains to NaN weights silently)."""
    require_counts(
        ("--student-epochs", args.student_epochs),
    )
    if args.limit is not None and args.limit < MIN_LIMIT:
        raise FlagValueError(
            f"--limit must be at least {MIN_LIMIT} images of each class (the train, val and "
            f"test splits each need some), not {args.limit}"
        )
    if args.batch_size < 2:  # BatchNorm cannot train on batches of one
        raise FlagValueError(f"--batch-size must be at least 2, not {args.batch_size}")
    if args.input_size < MIN_INPUT_SIZE:
        raise FlagValueError(
            f"--input-size must be at least {MIN_INPUT_SIZE} px (the DenseNet teacher shrinks a "
            f"crop 32 times), not {args.input_size}"
        )
    if args.input_size > checkpoint.INPUT_SIZES[1]:  # the app would refuse such weights
        raise FlagValueError(
            f"--input-size must be at most {checkpoint.INPUT_SIZES[1]} px (the app loads no "
            f"weights for larger crops), not {args.input_size}"
        )
    low, high = student_net.WIDTH_RANGE
    if not low <= args.student_width <= high:
        raise FlagValueError(
            f"--student-width must lie in [{low}, {high}], not {args.student_width}"
        )
    if not 0 < args.lr < math.inf:
        raise FlagValueError(f"--lr must be a finite number above 0, not {args.lr}")
    if not 0 < args.temperature < math.inf:
        raise FlagValueError(
            f"--temperature must be a finite number above 0, not {args.temperature}"
        )
    if not 0 <= args.label_smoothing < 1:
        raise FlagValueError(
            f"--label-smoothing must be at least 0 and below 1, not {args.label_smoothing}"
        )
    if not 0 <= args.sunglasses <= 1:  # also refuses nan
        raise FlagValueError(f"--sunglasses must lie in [0, 1], not {args.sunglasses}")
    if not 0 <= args.hue <= 180 or not 0 <= args.grey <= 1:  # also refuses nan
        raise FlagValueError(
            f"--hue must lie in [0, 180] degrees and --grey in [0, 1], not {args.hue} and "
            f"{args.grey}"
        )
    if not 0 <= args.distil_weight <= 1:
        raise FlagValueError(f"--distil-weight must be between 0 and 1, not {args.distil_weight}")
    if not all(0 <= t <= 1 for t in args.negative_thresholds):  # also refuses nan
        thresholds = " ".join(map(str, args.negative_thresholds))
        raise FlagValueError(f"--negative-thresholds must lie in [0, 1], not {thresholds}")
    if args.negatives and not args.scenes:
        raise FlagValueError("--negatives needs --scenes: false boxes are mined from scenes")
    if tuple(args.negative_thresholds) != NEGATIVE_DETECTOR.thresholds and not args.negatives:
        raise FlagValueError(
            "--negative-thresholds works only with --negatives (which mines the false boxes)"
        )
    if args.teacher and not Path(args.teacher).is_file():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(args.teacher))


def trained_teacher(args: argparse.Namespace) -> torch.nn.Module:
    """The --teacher model, refused (before any cropping) when it cannot serve this run.
    Without --input-size the student takes the teacher's crop size."""
    teacher, meta = checkpoint.load(args.teacher, "teacher")
    if args.input_size is None:
        args.input_size = meta.input_size
    needed = CLASS_NAMES + (("not_face",) if args.negatives else ())
    if tuple(meta.class_names) != needed:
        hint = "; add --negatives --scenes DIR" if "not_face" in meta.class_names else ""
        raise CheckpointError(
            f"{args.teacher} predicts {meta.class_names}, this run needs {needed}{hint}"
        )
    if meta.input_size != args.input_size:
        raise ValueError(
            f"{args.teacher} was trained on {meta.input_size} px crops; distil with "
            f"--input-size {meta.input_size}"
        )
    return teacher


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, outputs that could not be written at the end: a folder where
    weights or a report file go, a file where the report folder goes, earlier outputs
    without --overwrite, a folder that cannot be created."""
    out = Path(args.out)
    refuse_outputs_in_data(args, out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    report = out / "report"
    if report.exists() and not report.is_dir():
        raise ValueError(f"{report} is a file; the run writes its report folder there")
    weights = [out / f"{role}.pt" for role in ("teacher", "student")]
    if args.teacher:
        weights = weights[1:]  # a run from a trained teacher writes no teacher.pt
    for path in weights + [report / name for name in REPORT_FILES]:
        if path.is_dir():
            raise ValueError(f"{path} is a folder; the run writes a file there")
    for path in [report / name for name in REPORT_FILES]:
        if kind := model_kind(path):
            raise ValueError(
                f"{path} holds {kind}, which the run's report never replaces; "
                "move it or write the run elsewhere"
            )
    if any((report / name).exists() for name in REPORT_FILES) and not args.overwrite:
        raise OutputExistsError(f"{report} already holds a report (pass --overwrite to replace it)")
    for path in weights:
        if path.exists() and not args.overwrite:
            raise OutputExistsError(f"{path} already exists (pass --overwrite to replace it)")
    check_folder_creatable(out)
    check_folder_creatable(report)


def refuse_outputs_in_data(args: argparse.Namespace, out: Path) -> None:
    """Refuse ``out`` (the run's --out, or a comparison's) and --work-dir inside --data or
    --scenes, first of all: a later check would probe those folders with a test file."""
    for flag, folder in (("--out", out), ("--work-dir", Path(args.work_dir))):
        if str(folder) == "-":
            raise ValueError(f"{flag} -: name a folder (standard output is not offered)")
        refuse_inside(folder, flag, {"--data": args.data, "--scenes": args.scenes})
