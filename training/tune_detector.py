"""Fine-tune MTCNN's P-, R- and O-Net on the annotated faces of a scenes set's train split.

With ``--faces``, the train split of a class-folder set joins in, boxed by stock MTCNN
(``training.face_photos``), so that tuning for street scenes keeps large webcam faces.

MTCNN's stock weights were learnt on unmasked faces: its later stages throw away many masked
and small faces that its first stage proposed. Starting from those weights, each stage is
tuned in turn (P-Net, then R-Net on the tuned P-Net's proposals, then O-Net on what the tuned
R-Net keeps), on windows labelled against the annotations (see ``detector_samples``). Only
the ``train`` split of ``training.scenes_split`` is read, so ``training.evaluate --split
test`` stays leak-free. Each finished stage is kept (``detector_state``) until the run ends,
so ``--resume`` goes on after an interruption from the next stage.

    python -m training.tune_detector --scenes ../shared/data/scenes --out models/detector.pt
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from facenet_pytorch import MTCNN
from tqdm import tqdm

from app.atomic import check_writable, describe_error
from app.console import error, exit_status, guard_streams, log_to_stderr, say, tell
from app.digest import file_digest
from app.flags import (
    MAX_FACE_SIDE,
    FlagValueError,
    OneLineParser,
    input_path,
    output_file,
    output_folder,
    require_counts,
    seed,
    training_device,
)
from app.images import ImageError, read_rgb
from app.stop_signals import stop_message, stop_signals_raise
from models import detector_checkpoint
from models.detector_checkpoint import DetectorWeightsError
from models.file_kind import WEIGHTS, model_kind
from training import cascade, detector_samples, detector_state
from training.dataset_files import DatasetError
from training.detector_samples import LABEL_NEGATIVE, LABEL_PART, LABEL_POSITIVE, Samples
from training.distillers import as_device
from training.face_photos import train_face_photos
from training.outputs import (
    OutputSet,
    OutputsNotWrittenError,
    describe_output_error,
    refuse_inside,
    strict_json,
)
from training.scenes_split import split_scenes
from training.voc import (
    AnnotationError,
    GroundTruth,
    faces_in_image,
    find_scenes,
    parse_annotation,
)

PROG = "training.tune_detector"  # how its one-line complaints begin
WEIGHTS_SUFFIXES = (".pt", ".pth")  # what --out may be named: the file holds PyTorch weights
log = logging.getLogger(PROG)  # not "__main__" when run with -m

SOFTMAX = {"pnet": "softmax4_1", "rnet": "softmax5_1", "onet": "softmax6_1"}
BOX_WEIGHT = {"pnet": 0.5, "rnet": 0.5, "onet": 1.0}
UNMASKED_REPEATS = 4
MIN_MINED_FACE = cascade.WINDOW["pnet"] / 2  # smaller: each photo enlarged over twofold


def train_scenes(scenes: Path, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(RGB photo, N x 4 face boxes, N repeats) for every train-split scene.

    All three classes are faces. Unmasked faces are a sixth of the set's faces; each gets
    ``UNMASKED_REPEATS`` times the jittered windows so tuning on masked faces does not
    unlearn them (measured: without it, R-Net kept 76% of unmasked faces >= 32 px, not 91%).
    """
    files = find_scenes(scenes)
    splits = split_scenes(files.pairs, seed)
    out = []
    for pair in files.pairs:
        if splits[pair.image.stem] != "train":
            continue
        try:
            image = read_rgb(pair.image)
            faces = parse_annotation(pair.annotation).faces
        except (ImageError, AnnotationError) as exc:
            log.warning("skipped: %s", exc)
            continue
        faces, boxes = boxes_in_image(faces, image.shape[:2], pair.annotation)
        repeats = np.array([UNMASKED_REPEATS if f.name == "without_mask" else 1 for f in faces])
        out.append((image, boxes, repeats))
    if not out:
        raise DatasetError(f"no usable train-split scenes in {scenes}")
    if not any(len(boxes) for _, boxes, _ in out):
        raise DatasetError(f"the train-split annotations in {scenes} hold no face boxes")
    return out


def boxes_in_image(
    faces: list[GroundTruth], shape: tuple[int, int], source: Path
) -> tuple[list[GroundTruth], np.ndarray]:
    """The faces whose boxes lie mostly inside an image of ``shape`` (H, W), with their
    boxes (N x 4) clipped to it (windows cut around a box mostly outside would span far more
    than the photo, so ``faces_in_image`` leaves those out)."""
    height, width = shape
    kept = faces_in_image(faces, shape, source)
    boxes = [np.clip(face.box, 0, [width, height, width, height]) for face in kept]
    return kept, np.array(boxes, dtype=np.float32).reshape(-1, 4)


def stage_logits(net: nn.Module, stage: str, windows: torch.Tensor):
    """(box offsets N x 4, class logits N x 2) of a stage, bypassing its final softmax."""
    softmax = getattr(net, SOFTMAX[stage])
    setattr(net, SOFTMAX[stage], nn.Identity())
    try:
        out = net(windows)
    finally:
        setattr(net, SOFTMAX[stage], softmax)
    offsets, logits = out[0], out[-1]
    if stage == "pnet":  # fully convolutional: a 12 px window gives a 1 x 1 map
        offsets, logits = offsets.flatten(1), logits.flatten(1)
    return offsets, logits


def flip(windows: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror windows left-right; the x offsets swap sides and change sign."""
    mirrored = offsets[:, [2, 1, 0, 3]].clone()
    mirrored[:, [0, 2]] *= -1
    return windows.flip(3), mirrored


def stage_loss(net, stage, windows, labels, offsets) -> tuple[torch.Tensor, dict]:
    reg, logits = stage_logits(net, stage, windows)
    scored = labels != LABEL_PART
    boxed = labels != LABEL_NEGATIVE
    target = (labels[scored] == LABEL_POSITIVE).long()
    cls = F.cross_entropy(logits[scored], target) if scored.any() else logits.sum() * 0
    box = F.mse_loss(reg[boxed], offsets[boxed]) if boxed.any() else reg.sum() * 0
    correct = (logits[scored].argmax(1) == target).sum().item()
    return cls + BOX_WEIGHT[stage] * box, {"correct": correct, "scored": int(scored.sum())}


def split_samples(samples: Samples, seed: int) -> tuple[Samples, Samples]:
    """A seeded 90/10 split of the windows, to watch the classification accuracy."""
    order = torch.randperm(len(samples.labels), generator=torch.Generator().manual_seed(seed))
    cut = int(len(order) * 0.9)
    pick = [order[:cut], order[cut:]]
    return tuple(Samples(samples.windows[i], samples.labels[i], samples.offsets[i]) for i in pick)


@torch.no_grad()
def window_accuracy(net, stage, samples: Samples, device) -> float:
    net.eval()
    correct = scored = 0
    for start in range(0, len(samples.labels), 1024):
        part = slice(start, start + 1024)
        _, figures = stage_loss(
            net,
            stage,
            samples.windows[part].to(device),
            samples.labels[part].to(device),
            samples.offsets[part].to(device),
        )
        correct += figures["correct"]
        scored += figures["scored"]
    return correct / max(scored, 1)


def tune_stage(net, stage, samples: Samples, args, device) -> dict:
    """Fine-tune one stage; keeps the weights of the epoch with the best held-out accuracy."""
    train, held_out = split_samples(samples, args.seed)
    net.to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=1e-4)
    before = window_accuracy(net, stage, held_out, device)
    best, best_state, history = before, {k: v.clone() for k, v in net.state_dict().items()}, []
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        net.train()
        order = torch.randperm(len(train.labels), generator=generator)
        total, batches = 0.0, range(0, len(order), args.batch_size)
        for start in tqdm(batches, desc=f"{stage} epoch {epoch}", leave=False, disable=args.quiet):
            pick = order[start : start + args.batch_size]
            windows, offsets = train.windows[pick], train.offsets[pick]
            if torch.rand(1, generator=generator).item() < 0.5:
                windows, offsets = flip(windows, offsets)
            loss, _ = stage_loss(
                net, stage, windows.to(device), train.labels[pick].to(device), offsets.to(device)
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item()
        accuracy = window_accuracy(net, stage, held_out, device)
        history.append({"epoch": epoch, "loss": total / len(batches), "held_out_acc": accuracy})
        log.info(
            "%s epoch %d: loss %.4f, held-out accuracy %.4f",
            stage,
            epoch,
            total / len(batches),
            accuracy,
        )
        if accuracy > best:
            best, best_state = accuracy, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    return {
        "windows": samples.counts(),
        "held_out_acc_before": before,
        "held_out_acc": best,
        "history": history,
    }


def start_from_record(path: Path | None, meta: dict | None) -> dict | str:
    """What the tuning started from: "stock", or the file with its digest and command."""
    if path is None:
        return "stock"
    return {
        "file": str(path),
        "sha1": file_digest(path),
        "command": (meta or {}).get("command"),
    }


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training.tune_detector", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--scenes", type=input_path, required=True, help="scenes set (images/ + annotations/)"
    )
    p.add_argument(
        "--faces",
        type=input_path,
        help="also tune on the train split of this class-folder set (with_mask/, "
        "without_mask/), boxed by stock MTCNN: large, sharp webcam faces",
    )
    p.add_argument(
        "--out",
        type=output_file,
        default=detector_checkpoint.DEFAULT_DETECTOR,
        help="weights file to write (default models/detector.pt)",
    )
    p.add_argument(
        "--start-from",
        type=input_path,
        metavar="FILE",
        help="detector weights to start from, such as an earlier run's (default: MTCNN's "
        "stock weights); the nets not in --stages keep these weights",
    )
    p.add_argument(
        "--stages",
        nargs="+",
        choices=("pnet", "rnet", "onet"),
        default=["pnet", "rnet", "onet"],
        help="which nets to tune, in this order",
    )
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--min-face",
        type=float,
        default=12,
        help="smallest face in pixels searched for when mining R-/O-Net windows "
        f"({MIN_MINED_FACE:g} to {MAX_FACE_SIDE}; default 12)",
    )
    p.add_argument(
        "--mine-thresholds",
        type=float,
        nargs=2,
        default=(0.4, 0.2),
        metavar=("P", "R"),
        help="P-/R-Net thresholds when mining later windows",
    )
    p.add_argument("--seed", type=seed, default=0, help="the scenes split seed and training seed")
    p.add_argument("--device", default="auto", type=training_device)
    p.add_argument(
        "--work-dir",
        type=output_folder,
        default=Path(".cache"),
        help="where each finished stage is kept until the run ends (default .cache/)",
    )
    p.add_argument(
        "--resume", action="store_true", help="go on from the stages an interrupted run finished"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def refuse_other_weights(out: Path) -> None:
    """Refuse an --out that holds a model other than detector weights (a classifier, an
    export): --overwrite is for replacing an earlier tuned detector, not someone's
    training."""
    kind = model_kind(out)
    if not kind:
        return
    try:
        detector_checkpoint.read(out)
    except DetectorWeightsError:
        raise ValueError(
            f"--out {out} holds {kind} that are not MaskWatch detector weights; "
            "the tuned detector replaces only an earlier one: write it elsewhere"
        ) from None


def tune(args: argparse.Namespace) -> dict:
    require_counts(("--epochs", args.epochs), ("--batch-size", args.batch_size))
    if not 0 < args.lr < math.inf:
        raise FlagValueError(f"--lr must be a finite number above 0, not {args.lr}")
    if not MIN_MINED_FACE <= args.min_face <= MAX_FACE_SIDE:  # also refuses nan and inf
        raise FlagValueError(
            f"--min-face must be between {MIN_MINED_FACE:g} and {MAX_FACE_SIDE} pixels, "
            f"got {args.min_face:g}"
        )
    if not all(0 <= t <= 1 for t in args.mine_thresholds):  # also refuses nan
        raise FlagValueError(f"--mine-thresholds must lie in [0, 1], got {args.mine_thresholds}")
    if len(set(args.stages)) != len(args.stages):
        raise FlagValueError(f"--stages names a net twice: {' '.join(args.stages)}")
    inputs = {"--scenes": args.scenes, "--faces": args.faces}
    if str(args.out) != "-":  # check_writable words that refusal
        refuse_inside(args.out, "--out", inputs)  # first: the checks below probe the folder
    check_writable(args.out, args.overwrite, make_folder=True, may_replace=(WEIGHTS,))
    refuse_other_weights(args.out)
    if Path(args.out).suffix.lower() not in WEIGHTS_SUFFIXES:
        raise ValueError(
            f"--out {args.out}: the tuned detector is PyTorch weights, and the run's record "
            "goes beside them with a .json suffix; name the weights file with .pt or .pth"
        )
    record = Path(args.out).with_suffix(".json")
    check_writable(record, args.overwrite, make_folder=True)
    refuse_inside(args.work_dir, "--work-dir", inputs)
    torch.manual_seed(args.seed)
    device = as_device(args.device)
    mtcnn = MTCNN(keep_all=True, post_process=False)
    start_meta = None
    if args.start_from:  # before any photo is read, so a wrong file costs nothing
        start_meta = detector_checkpoint.load_into(args.start_from, mtcnn)
    start_from = start_from_record(args.start_from, start_meta)  # the file as loaded
    state = detector_state.state_path(args.work_dir, detector_state.settings_of(args, start_from))
    state.parent.mkdir(parents=True, exist_ok=True)  # a --work-dir that cannot be: said now
    stages = resumed_stages(args, state, mtcnn)
    if stages:
        args.kept = (state, list(stages))  # for main's word on what a stop leaves
    mtcnn.eval()
    scenes = train_scenes(args.scenes, args.seed)
    photos, faces_record = list(scenes), None
    if args.faces:
        extra, faces_record = train_face_photos(args.faces, scenes, args.seed, not args.quiet)
        photos += extra
    started, resumed = time.perf_counter(), list(stages)
    for stage in args.stages:
        if stage in stages:
            continue
        mtcnn.to("cpu")
        samples = detector_samples.collect(
            photos,
            stage,
            mtcnn,
            args.min_face,
            args.mine_thresholds,
            args.seed,
            progress=not args.quiet,
        )
        stages[stage] = tune_stage(getattr(mtcnn, stage), stage, samples, args, device)
        mtcnn.to("cpu")
        try:
            detector_state.keep(state, mtcnn, stages)
            args.kept = (state, list(stages))
            log.info("%s finished and kept in %s (--resume goes on after it)", stage, state)
        except OSError as exc:  # a full disk, say: the run itself can still finish
            log.warning(
                "%s cannot be kept in %s (%s); the run goes on, but if it stops now it "
                "cannot be resumed",
                stage,
                state,
                describe_error(exc),
            )
    mtcnn.to("cpu")
    meta = {
        "command": "python -m training.tune_detector " + shlex.join(sys.argv[1:]),
        "scenes": str(args.scenes),
        "train_scenes": len(scenes),
        "train_faces": int(sum(len(f) for _, f, _ in scenes)),
        "face_photos": faces_record,
        "seed": args.seed,
        "start_from": start_from,
        "stages": stages,
        "resumed_stages": resumed,
        "minutes": round((time.perf_counter() - started) / 60, 1),  # this run's alone
    }
    try:
        with OutputSet(args.overwrite) as outputs:  # the weights and their record, or neither
            detector_checkpoint.save(outputs.path(args.out), mtcnn, meta)
            outputs.path(record).write_text(strict_json(meta) + "\n", encoding="utf-8")
            outputs.commit()
    except OSError as exc:
        raise OutputsNotWrittenError(
            f"{describe_output_error(exc)}; neither {args.out} nor {record} was written"
        ) from exc
    state.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # only when no other run's state is kept there
        state.parent.rmdir()
    return meta


def resumed_stages(args: argparse.Namespace, state: Path, mtcnn) -> dict:
    """The records of the stages an interrupted run with these settings finished, their
    nets loaded into ``mtcnn``, with --resume; else none (a kept state is then said to be
    replaced as this run's stages finish)."""
    if not args.resume:
        if state.is_file():
            log.warning(
                "an interrupted run with these settings is kept in %s; this run starts anew "
                "and replaces it (--resume goes on from it instead)",
                state,
            )
        return {}
    stages = detector_state.take_back(state, mtcnn, args.stages)
    if stages:
        log.info("--resume: %s tuned earlier, read back from %s", ", ".join(stages), state)
    else:
        log.warning(
            "--resume: no interrupted run with these settings in %s; starting anew", args.work_dir
        )
    return stages


def main(argv: list[str] | None = None) -> int:
    guard_streams()
    args = build_parser().parse_args(argv)
    log_to_stderr(logging.INFO)
    try:
        with stop_signals_raise():
            meta = tune(args)
    except OutputsNotWrittenError as exc:
        error(PROG, str(exc))
        return 1
    except (DatasetError, ValueError, OSError) as exc:  # OutputExistsError is an OSError
        error(PROG, describe_error(exc))
        return 2
    except KeyboardInterrupt as exc:
        said, status = stop_message(exc)
        kept = getattr(args, "kept", None)
        if kept is None:
            tell(PROG, f"{said}; nothing was written")
        else:
            tell(
                PROG,
                f"{said}; {', '.join(kept[1])} finished, kept in {kept[0]}: run the same "
                "command with --resume to go on from there",
            )
        return status
    for stage, figures in meta["stages"].items():
        say(
            f"{stage}: held-out window accuracy {figures['held_out_acc_before']:.4f} -> "
            f"{figures['held_out_acc']:.4f} ({figures['windows']})"
        )
    say(f"detector weights in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main(), PROG))
