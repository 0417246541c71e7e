"""Measure a classifier on labelled face images, or the whole app on annotated scene photos.

``python -m training.evaluate --data DIR --model student|teacher``. A class-folder set
(``with_mask/``, ``without_mask/``) goes through the training crop rule and the classifier;
a scenes set (``images/`` + VOC ``annotations/``) goes through ``Pipeline.process_rgb`` and
its faces are matched to the annotated boxes. A table goes to stdout, figures to ``--json``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from app.atomic import check_writable, describe_error
from app.config import DetectorConfig, PipelineConfig
from app.console import error, exit_status, guard_streams, log_to_stderr, say, tell
from app.detector_flags import add_detector_flags, detector_file, detector_of
from app.device import DeviceError
from app.digest import file_digest
from app.flags import (
    FlagValueError,
    OneLineParser,
    device,
    input_path,
    output_file,
    seed,
)
from app.images import ImageError, read_rgb
from app.pipeline import MODEL_NAMES, Face, Pipeline
from app.stop_signals import stop_message, stoppable
from models.checkpoint import CheckpointError, default_weights
from models.detector_checkpoint import DetectorWeightsError
from training.dataset_files import (
    FOLDER_LABELS,
    DatasetError,
    DatasetFiles,
    find_images,
    spread,
)
from training.detection_metrics import ClassAP, iou_matrix, match_detections
from training.evaluation_text import format_report
from training.metrics import classification_report
from training.outputs import OutputIsInputError, refuse_inputs, save_after_work, strict_json
from training.prepare import face_crop_for_image, second_opinion_for, split_of_images
from training.scenes_split import split_scenes
from training.split_seeds import TrainedOn, classifier_splits, detector_splits, split_warnings
from training.voc import (
    INCORRECT,
    VOC_CLASSES,
    Annotation,
    AnnotationError,
    SceneFiles,
    faces_in_image,
    find_scenes,
    is_scenes_layout,
    parse_annotation,
)

log = logging.getLogger("training.evaluate")  # not "__main__" when run with -m

PROG = "training.evaluate"
# prepare's rules for images the app's detector finds no face in, or only a part of one
# (stock MTCNN's box, or the whole image, is classified instead)
NO_FACE_RULES = ("stock_face", "part_of_face", "no_face_whole_image")


class EvaluationError(ValueError):
    """A request that cannot be evaluated: wrong layout, nothing readable, bad setting."""


@dataclass
class EvaluationConfig:
    """Settings of the measurement itself (the detector's own live in DetectorConfig).

    Attributes:
        iou_threshold: overlap a detection needs with a ground-truth box to count as found.
        size_edges: face-size bin edges in pixels of the box's longer side.
        safety_min_side: unmasked faces at least this large count for the safety recall.
        batch_size: face crops per classifier call on class-folder sets.
        limit: evaluate at most this many images, spread evenly over the sorted list.
        split: scenes only: ``test`` or ``train`` of the seeded scenes split that training
            uses (``training.scenes_split``), or ``all``.
        seed: the seed of that split.
    """

    iou_threshold: float = 0.5
    size_edges: tuple[int, ...] = (32, 64)
    safety_min_side: int = 32
    batch_size: int = 32
    limit: int | None = None
    split: str = "all"
    seed: int = 0

    def size_bins(self) -> list[tuple[str, float, float]]:
        """(name, low, high) bins, e.g. ``<32``, ``32-63``, ``64+``."""
        edges = sorted(self.size_edges)
        bins = [(f"<{edges[0]}", 0.0, float(edges[0]))]
        bins += [(f"{lo}-{hi - 1}", float(lo), float(hi)) for lo, hi in zip(edges, edges[1:])]
        return bins + [(f"{edges[-1]}+", float(edges[-1]), math.inf)]

    def size_bin(self, side: float) -> str:
        return next(name for name, lo, hi in self.size_bins() if lo <= side < hi)


def detect_layout(root: Path) -> str:
    """``classes`` or ``scenes``; raise a user-facing error for anything else."""
    root = Path(root)
    if not root.is_dir():
        found = "is a file, not a folder" if root.exists() else "not found"
        raise EvaluationError(f"data folder {root} {found}")
    folders = {p.name.lower() for p in root.iterdir() if p.is_dir()}
    if folders & set(FOLDER_LABELS):
        return "classes"
    if is_scenes_layout(root):
        return "scenes"
    raise EvaluationError(
        f"{root} is neither a class-folder set (with_mask/, without_mask/) "
        "nor a scenes set (images/ + annotations/)"
    )


def _fraction(hits: int, total: int) -> float | None:
    return hits / total if total else None


def evaluate_classes(
    pipeline: Pipeline, found: DatasetFiles, config: EvaluationConfig, progress: bool = True
) -> dict:
    """Crop each labelled image as training does, classify the crops in batches."""
    images = found.images
    if config.split != "all":
        splits = split_of_images(found, config.seed, progress)
        images = [(path, label) for path, label in images if splits.get(str(path)) == config.split]
        if not images:
            raise EvaluationError(f"the {config.split} split of this dataset is empty")
    split_size = len(images)
    items = spread(images, config.limit)
    classifier = pipeline.classifier(pipeline.active)
    names = tuple(classifier.meta.class_names)
    records: list[dict] = []
    unreadable: list[str] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        for record, prediction in zip(
            records[len(records) - len(batch) :], classifier.classify(batch)
        ):
            record["predicted"], record["score"] = prediction.label, round(prediction.score, 4)
        batch.clear()

    second_opinion = second_opinion_for(pipeline.detector)
    start = time.perf_counter()
    for path, label in tqdm(items, desc="classifying", unit="img", disable=not progress):
        try:
            rgb = read_rgb(path)
        except ImageError as exc:
            log.warning("%s", exc)
            unreadable.append(str(exc))
            continue
        crop, rule = face_crop_for_image(
            rgb, pipeline.detector, pipeline.config.crop, second_opinion
        )
        records.append({"file": str(path), "label": label, "rule": rule})
        batch.append(crop)
        if len(batch) >= config.batch_size:
            flush()
    if batch:
        flush()
    seconds = time.perf_counter() - start
    if not records:
        raise EvaluationError(f"none of the {len(items)} images could be read")

    def report(subset: list[dict]) -> dict | None:
        if not subset:
            return None
        return classification_report(
            [names.index(r["label"]) for r in subset],
            [names.index(r["predicted"]) for r in subset],
            names,
        )

    with_face = [r for r in records if r["rule"] not in NO_FACE_RULES]
    no_face = len(records) - len(with_face)
    return {
        "layout": "classes",
        "images": {
            "listed": len(found.images),
            "in_split": split_size,
            "split": config.split,
            "chosen": len(items),
            "evaluated": len(records),
            "unreadable": unreadable,
            "not_images": len(found.skipped),
            "left_out": found.left_out,  # bad names, photos under both labels
        },
        "no_face": {"count": no_face, "fraction": _fraction(no_face, len(records))},
        "rules": dict(Counter(r["rule"] for r in records)),
        "all_images": report(records),
        "faces_found": report(with_face),
        "mistakes": [r for r in records if r["predicted"] != r["label"]],
        "timing": {
            "seconds": round(seconds, 2),
            "images_per_s": round(len(records) / seconds, 2) if seconds else None,
        },
    }


class SceneTally:
    """Running figures of the whole pipeline over annotated scenes, one image at a time."""

    def __init__(self, config: EvaluationConfig):
        self.config = config
        self.ap = {label: ClassAP(config.iou_threshold) for label in ("mask", "no_mask")}
        bins = [name for name, _, _ in config.size_bins()]
        self.recall = {name: {b: [0, 0] for b in bins} for name in VOC_CLASSES}
        self.labels = {name: Counter() for name in VOC_CLASSES}
        self.safety = [0, 0]
        self.large = {name: [0, 0] for name in VOC_CLASSES}  # faces >= safety_min_side
        self.false_detections = 0
        self.duplicates = 0
        self.detections = 0
        self.per_image: list[dict] = []

    def add(self, file: str, annotation: Annotation, faces: list[Face]) -> None:
        iou = self.config.iou_threshold
        boxes = [face.box for face in faces]
        ranks = [face.detector_score * face.score for face in faces]
        ignore = [gt.box for gt in annotation.faces if gt.name == INCORRECT]
        for label, ap in self.ap.items():
            mine = [i for i, face in enumerate(faces) if face.label == label]
            ap.add_image(
                [boxes[i] for i in mine],
                [ranks[i] for i in mine],
                [gt.box for gt in annotation.faces if gt.label == label],
                ignore,
            )

        gt_boxes = [gt.box for gt in annotation.faces]
        matches = match_detections(boxes, [face.detector_score for face in faces], gt_boxes, iou)
        found_by = {int(g): d for d, g in enumerate(matches) if g >= 0}
        for g, gt in enumerate(annotation.faces):
            cell = self.recall[gt.name][self.config.size_bin(gt.side)]
            large = self.large[gt.name] if gt.side >= self.config.safety_min_side else [0, 0]
            cell[1] += 1
            large[1] += 1
            if g in found_by:
                cell[0] += 1
                large[0] += 1
                self.labels[gt.name][faces[found_by[g]].label] += 1
            if gt.name == "without_mask" and gt.side >= self.config.safety_min_side:
                self.safety[1] += 1
                if g in found_by and faces[found_by[g]].label == "no_mask":
                    self.safety[0] += 1

        overlaps = iou_matrix(boxes, gt_boxes)
        best = overlaps.max(axis=1) if overlaps.size else np.zeros(len(faces))
        false = int(np.sum(best < iou))
        self.false_detections += false
        self.duplicates += int(np.sum((matches < 0) & (best >= iou)))
        self.detections += len(faces)
        self.per_image.append(
            {
                "file": file,
                "faces": len(annotation.faces),
                "detections": len(faces),
                "found": len(found_by),
                "false_detections": false,
            }
        )

    def figures(self) -> dict:
        ap = {label: tally.result().as_dict() for label, tally in self.ap.items()}
        values = [v["ap"] for v in ap.values() if v["ap"] is not None]
        recall = {name: self._cells(cells) for name, cells in self.recall.items()}
        recall["all"] = {
            b: self._cell(
                sum(recall[n][b]["found"] for n in VOC_CLASSES),
                sum(recall[n][b]["total"] for n in VOC_CLASSES),
            )
            for b in recall[INCORRECT]
        }
        images = len(self.per_image)
        return {
            "ground_truth": {n: sum(c[1] for c in self.recall[n].values()) for n in VOC_CLASSES},
            "detections": self.detections,
            "ap": ap,
            "map": float(np.mean(values)) if values else None,
            "recall_by_size": recall,
            "labels_of_found": {n: dict(c) for n, c in self.labels.items()},
            "unmasked_recall": {
                "min_side": self.config.safety_min_side,
                **self._cell(*self.safety),
            },
            "large_recall": {
                "min_side": self.config.safety_min_side,
                **{name: self._cell(*cell) for name, cell in self.large.items()},
            },
            "incorrect_mask": {
                "total": recall[INCORRECT]["all"]["total"],
                "detected": recall[INCORRECT]["all"]["found"],
                "labels": dict(self.labels[INCORRECT]),
            },
            "false_detections": {
                "total": self.false_detections,
                "per_image": self.false_detections / images if images else None,
                "duplicates": self.duplicates,
            },
            "per_image": self.per_image,
        }

    @staticmethod
    def _cell(hits: int, total: int) -> dict:
        return {"found": int(hits), "total": int(total), "recall": _fraction(hits, total)}

    @classmethod
    def _cells(cls, cells: dict[str, list[int]]) -> dict:
        """Recall per size bin plus ``all``, from [found, total] pairs."""
        out = {b: cls._cell(*c) for b, c in cells.items()}
        found, total = (sum(c[k] for c in cells.values()) for k in (0, 1))
        out["all"] = cls._cell(found, total)
        return out


def evaluate_scenes(
    pipeline: Pipeline, files: SceneFiles, config: EvaluationConfig, progress: bool = True
) -> dict:
    """Run the app's pipeline on every annotated scene and score it against the boxes."""
    pairs = files.pairs
    if config.split == "val":
        raise EvaluationError(
            "a scenes set has no val split (its seeded split is train and test); "
            "use --split train, test or all"
        )
    if config.split != "all":
        splits = split_scenes(pairs, config.seed)
        pairs = [p for p in pairs if splits[p.image.stem] == config.split]
        if not pairs:
            raise EvaluationError(f"the {config.split} split of this scenes set is empty")
    split_size = len(pairs)
    pairs = spread(pairs, config.limit)
    tally = SceneTally(config)
    unreadable: list[str] = []
    detect_ms = classify_ms = 0.0
    start = time.perf_counter()
    for pair in tqdm(pairs, desc="scenes", unit="img", disable=not progress):
        try:
            annotation = parse_annotation(pair.annotation)
            rgb = read_rgb(pair.image)
        except (AnnotationError, ImageError) as exc:
            log.warning("%s", exc)
            unreadable.append(str(exc))
            continue
        height, width = rgb.shape[:2]
        if annotation.width and (annotation.width, annotation.height) != (width, height):
            log.warning(
                "%s is %dx%d but its annotation says %dx%d",
                pair.image,
                width,
                height,
                annotation.width,
                annotation.height,
            )
        annotation.faces = faces_in_image(annotation.faces, (height, width), pair.annotation)
        result = pipeline.process_rgb(rgb)
        detect_ms += result.detect_ms
        classify_ms += result.classify_ms
        tally.add(pair.image.name, annotation, result.faces)
    seconds = time.perf_counter() - start
    images = len(tally.per_image)
    if not images:
        raise EvaluationError(f"none of the {len(pairs)} scenes could be read")
    return {
        "layout": "scenes",
        "images": {
            "listed": len(files.pairs),
            "in_split": split_size,
            "split": config.split,
            "chosen": len(pairs),
            "evaluated": images,
            "unreadable": unreadable,
            "without_annotation": [str(p) for p in files.images_without_annotation],
            "same_name_left_out": [[str(p) for p in same] for same in files.ambiguous_images],
        },
        **tally.figures(),
        "timing": {
            "seconds": round(seconds, 2),
            "images_per_s": round(images / seconds, 2),
            "detect_ms_mean": round(detect_ms / images, 1),
            "classify_ms_mean": round(classify_ms / images, 1),
        },
    }


def evaluate(
    data: Path,
    model: str,
    weights: Path | None,
    detector: DetectorConfig,
    config: EvaluationConfig,
    device: str = "auto",
    progress: bool = True,
    mirror: bool = False,
) -> dict:
    """Evaluate ``model`` on ``data`` of either layout; the whole report as a dict."""
    layout = detect_layout(data)
    files = find_images(data) if layout == "classes" else find_scenes(data)
    pipeline = Pipeline(
        PipelineConfig(detector=detector, model=model, device=device, mirror=mirror),
        weights={model: weights} if weights else {},
    )
    weights_path = Path(weights) if weights else default_weights(model)
    # NOTE: taken right after loading; a trainer replacing the file later does not change it.
    digest = file_digest(weights_path)[:12]
    warnings = split_warnings(
        layout, config.split, config.seed, trained_on(pipeline, model, weights_path)
    )
    for line in warnings:  # before the work, which may take minutes
        log.warning("%s", line)
    run = evaluate_classes if layout == "classes" else evaluate_scenes
    figures = run(pipeline, files, config, progress)
    return {
        "model": model,
        "weights": str(weights_path),
        "weights_sha1": digest,
        "device": str(pipeline.device),
        "data": str(data),
        "layout": layout,
        "settings": {
            "evaluation": asdict(config),
            "detector": asdict(detector),
            "crop": asdict(pipeline.config.crop),
            "mirror": mirror,
        },
        "split_warnings": warnings,
        **figures,
    }


def trained_on(pipeline: Pipeline, model: str, weights: Path) -> list[TrainedOn]:
    """What the evaluated classifier and detector record of the splits they learnt from."""
    trained = [classifier_splits(pipeline.classifier(model).meta, f"{model} weights {weights}")]
    if pipeline.detector.weights != "stock":
        detector = f"detector weights {pipeline.detector.weights}"
        trained.append(detector_splits(pipeline.detector.record, detector))
    return trained


def build_parser() -> argparse.ArgumentParser:
    defaults = EvaluationConfig()
    parser = OneLineParser(
        prog=f"python -m {PROG}",
        description=(
            "Measure the mask classifier on class folders, or the whole app on VOC scenes."
        ),
    )
    parser.add_argument(
        "--data",
        type=input_path,
        required=True,
        help="with_mask/ + without_mask/, or images/ + annotations/",
    )
    parser.add_argument("--model", choices=MODEL_NAMES, required=True)
    parser.add_argument(
        "--weights", type=input_path, help="checkpoint (default: the committed one)"
    )
    parser.add_argument(
        "--device", default="auto", type=device, help="auto, cpu, cuda or cuda:N (default auto)"
    )
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="also classify each face's mirror image and average (the app's --mirror)",
    )
    parser.add_argument("--json", type=output_file, help="write all figures to this JSON file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    parser.add_argument(
        "--limit",
        type=int,
        help="at most this many images, evenly spread (unreadable ones among them are "
        "counted as such, not replaced)",
    )
    parser.add_argument(
        "--iou",
        type=float,
        default=defaults.iou_threshold,
        help=f"IoU for a detection to match a box (default {defaults.iou_threshold})",
    )
    add_detector_flags(parser)
    parser.add_argument(
        "--split",
        choices=["all", "train", "val", "test"],
        default="all",
        help="which part of the seeded split training uses (default all; test is leak-free "
        "at the --seed the weights were trained with: for class folders the split of "
        "training.distill, for scenes that of --scenes; another --seed is warned about)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of that split (default 0)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"crops per classifier call (default {defaults.batch_size})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def configs(args: argparse.Namespace) -> tuple[DetectorConfig, EvaluationConfig]:
    if not 0 < args.iou <= 1:
        raise FlagValueError(f"--iou must be in (0, 1], got {args.iou}")
    if args.limit is not None and args.limit < 1:
        raise FlagValueError(f"--limit must be at least 1, got {args.limit}")
    if args.batch_size < 1:
        raise FlagValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    detector = detector_of(args)
    return detector, EvaluationConfig(
        iou_threshold=args.iou,
        batch_size=args.batch_size,
        limit=args.limit,
        split=args.split,
        seed=args.seed,
    )


def check_json(args: argparse.Namespace) -> None:
    """Refuse a --json that is an input, lies in --data or exists (without --overwrite)."""
    refuse_inputs(
        args.json,
        "--json",
        {
            "--weights": args.weights or default_weights(args.model),
            "--detector-weights": detector_file(args),
        },
    )
    check_writable(args.json, args.overwrite)
    if Path(args.data).resolve() in Path(args.json).resolve().parents:
        raise EvaluationError(
            f"--json {args.json} lies inside the --data folder; write it elsewhere"
        )


def write_json(args: argparse.Namespace, report: dict) -> int:
    """Write the figures after the run; a failure now is not a user error (status 1)."""
    text = strict_json(report) + "\n"
    lost = "the figures above were not saved"
    if save_after_work(PROG, args.json, text, args.overwrite, lost):
        return 1
    say(f"figures written to {args.json}")
    return 0


USER_ERRORS = (
    OutputIsInputError,
    EvaluationError,
    FlagValueError,
    DatasetError,
    CheckpointError,
    DetectorWeightsError,
    DeviceError,
    OSError,
)


@stoppable  # SIGTERM and SIGHUP stop it as Ctrl-C does
def main(argv: list[str] | None = None) -> int:
    guard_streams()
    args = build_parser().parse_args(argv)
    log_to_stderr(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        detector, config = configs(args)
        if args.json is not None:
            check_json(args)
        report = evaluate(
            args.data,
            args.model,
            args.weights,
            detector,
            config,
            args.device,
            progress=not args.quiet,
            mirror=args.mirror,
        )
        say(format_report(report, config.iou_threshold))
        return write_json(args, report) if args.json is not None else 0
    except USER_ERRORS as exc:
        error(PROG, describe_error(exc))
        return 2
    except KeyboardInterrupt as exc:
        said, status = stop_message(exc)
        tell(PROG, f"{said}; nothing was written")
        return status


if __name__ == "__main__":
    sys.exit(exit_status(main(), PROG))
