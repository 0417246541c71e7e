"""Prepare a class-folder dataset: crop faces with the app's detector, group, split, cache.

Rules, applied to every image and counted in the manifest:
- the file does not decode: listed under ``unreadable`` and left out;
- one face: its crop (the same crop the app makes) is used;
- several faces: the largest is used (these sets label a whole image, and the largest face
  is the subject), counted under ``several_faces``;
- a face under half the photo's shorter side: stock MTCNN is asked too, and when its face
  holds that box's centre and is at least twice as wide, the box was a part of the face (a
  lens, an eye: the tuned detector, which learnt on small street faces, does that on photos a
  face fills) and stock's box is used, counted under ``part_of_face``. A whole face inside
  another's box (a photo of a masked face held before an unmasked one) gives way too, as
  the largest face is the subject: no geometry tells it from a lens;
- no face: the detector is run again on the image with a border around it (tight face crops
  defeat MTCNN), counted under ``one_face_padded``;
- still none: stock MTCNN, which was trained on large sharp faces and finds most of those the
  tuned detector loses, gets the same two tries; its box is used, counted under
  ``stock_face``;
- still none: the whole image is taken as the face crop, counted under
  ``no_face_whole_image``, since these sets are mostly tight face crops already.

Why the stock second opinion: whole-image crops are framed unlike detector crops, and the
tuned detector loses masked photos far more often than unmasked ones, so most whole-image
crops were masked (three in four of the faces train split) and the classifier learnt to read
"framed like a whole photo" as "mask". Known shortcoming: stock boxes sit a little higher on
the face than the tuned detector's, so ``stock_face`` crops are framed slightly differently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from app.atomic import write_text
from app.config import CropConfig, DetectorConfig
from app.crops import crop_face, resize_crop
from app.detector import PART_OF_FACE, Detection, FaceDetector, area, longer_side, part_of
from app.images import ImageError, read_rgb
from models import detector_checkpoint
from training.dataset_files import DatasetError, find_images, spread
from training.dedup import dhash, group_near_duplicates
from training.outputs import WorkNotSavedError, save_arrays

log = logging.getLogger(__name__)

CACHE_SIZE = 128  # crops are cached at this size; training resizes to the model's input
PAD_FRACTION = 0.3
# A face box under this share of the photo's shorter side may be a part of a face, which it
# is when a stock face holds its centre and is at least twice as wide (app.detector.part_of).
PART_SMALL_IN_PHOTO = 0.5
SPLIT_FRACTIONS = {"test": 0.15, "val": 0.10}


@dataclass
class Prepared:
    crops: np.ndarray  # N x CACHE_SIZE x CACHE_SIZE x 3 uint8 RGB
    labels: np.ndarray  # N int64, index into class_names
    splits: np.ndarray  # N str: train / val / test
    files: list[str]
    class_names: tuple[str, ...] = ("mask", "no_mask")
    stats: dict = field(default_factory=dict)

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        keep = self.splits == split
        return self.crops[keep], self.labels[keep]


def _largest(detections: list[Detection]) -> Detection:
    return max(detections, key=lambda d: area(d.box))


# Stock MTCNN at its usual settings: the second opinion for photos the app's detector passes.
SECOND_OPINION = DetectorConfig(weights="stock", thresholds=(0.6, 0.7, 0.7), min_score=0.9)


def _find_face(rgb: np.ndarray, detector: FaceDetector) -> tuple[Detection, str] | None:
    """The largest face ``detector`` finds in ``rgb``, or in ``rgb`` framed with a grey border,
    and whether it was ``one_face``, ``one_face_padded`` or one of ``several_faces``."""
    detections = detector.detect(rgb)
    if detections:
        return _largest(detections), "one_face" if len(detections) == 1 else "several_faces"
    h, w = rgb.shape[:2]
    pad = int(round(max(h, w) * PAD_FRACTION))
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127,) * 3)
    found = detector.detect(padded)
    if not found:
        return None
    x1, y1, x2, y2 = _largest(found).box
    face = Detection((x1 - pad, y1 - pad, x2 - pad, y2 - pad), 1.0)
    return face, "one_face_padded" if len(found) == 1 else "several_faces"


def _small_in(face: Detection, rgb: np.ndarray) -> bool:
    """Whether ``face`` is small enough in its photo to be a part of a face it missed."""
    return longer_side(face.box) < PART_SMALL_IN_PHOTO * min(rgb.shape[:2])


def face_crop_for_image(
    rgb: np.ndarray,
    detector: FaceDetector,
    crop: CropConfig,
    second_opinion: FaceDetector | None = None,
) -> tuple[np.ndarray, str]:
    """The training crop of one labelled image and the rule that produced it.

    ``second_opinion`` (stock MTCNN, see ``second_opinion_for``) is asked when ``detector``
    finds no face or only a small one (perhaps a part of a face); None skips that step.
    """
    found = _find_face(rgb, detector)
    if second_opinion is not None and (found is None or _small_in(found[0], rgb)):
        stock = _find_face(rgb, second_opinion)
        if found is None and stock is not None:
            found = stock[0], "stock_face"
        elif found is not None and stock is not None and part_of(found[0].box, stock[0].box):
            found = stock[0], "part_of_face"
    if found is None:
        return rgb, "no_face_whole_image"
    face, rule = found
    return crop_face(rgb, face.box, crop), rule


def second_opinion_for(detector: FaceDetector) -> FaceDetector | None:
    """Stock MTCNN beside ``detector``, or None when ``detector`` already runs stock weights."""
    if detector.weights == "stock":
        return None
    return FaceDetector(SECOND_OPINION, detector.device)


def file_stamp(path: Path, tag: str) -> bytes:
    """``path``, ``tag``, size and modification time, for a cache key that changes when the
    file is edited, without reading it. The name goes in as its bytes, which any name has."""
    stat = path.stat()
    return os.fsencode(path) + f"|{tag}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()


def _fingerprint(files: list[tuple[Path, str]], detector: DetectorConfig, crop: CropConfig) -> str:
    digest = hashlib.sha1()
    for path, label in files:
        digest.update(file_stamp(path, label))
    digest.update(
        json.dumps(
            [
                asdict(detector),
                detector_checkpoint.identity(detector.weights),
                asdict(crop),
                CACHE_SIZE,
                PAD_FRACTION,
                PART_SMALL_IN_PHOTO,
                PART_OF_FACE,
                asdict(SECOND_OPINION),
                SPLIT_FRACTIONS,
            ]
        ).encode()
    )
    return digest.hexdigest()[:16]


def split_groups(groups: list[int], labels: list[int], seed: int) -> list[str]:
    """Assign whole groups to test, val and train, per class, reproducibly from ``seed``."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for g, y in zip(groups, labels):
        by_class.setdefault(y, [])
        if g not in by_class[y]:
            by_class[y].append(g)
    assigned: dict[int, str] = {}
    for y in sorted(by_class):
        ids = [g for g in by_class[y] if g not in assigned]
        rng.shuffle(ids)
        n = len(ids)
        n_test = round(n * SPLIT_FRACTIONS["test"])
        n_val = round(n * SPLIT_FRACTIONS["val"])
        for k, g in enumerate(ids):
            assigned[g] = "test" if k < n_test else "val" if k < n_test + n_val else "train"
    return [assigned[g] for g in groups]


def split_of_images(found, seed: int = 0, progress: bool = True) -> dict[str, str]:
    """File -> "train" / "val" / "test", the split ``prepare`` gives it with the same seed.

    The split depends only on the images (near-duplicate groups) and labels, not on the
    detector, so an evaluation can pick the test images without preparing crops.
    """
    class_names = ("mask", "no_mask")
    files, labels, hashes = [], [], []
    for path, label in tqdm(found.images, desc="grouping", unit="img", disable=not progress):
        try:
            rgb = read_rgb(path)
        except ImageError:
            continue
        files.append(str(path))
        labels.append(class_names.index(label))
        hashes.append(dhash(rgb))
    splits = split_groups(group_near_duplicates(hashes), labels, seed)
    return dict(zip(files, splits))


# What reading a cut-off or edited cache can raise: a partial .npz is not a zip file, a
# manifest may not be JSON or may lack its keys.
DAMAGED_CACHE = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile)


def read_prepared(cache: Path, manifest_path: Path) -> Prepared:
    """The crops and manifest an earlier run prepared (raises one of DAMAGED_CACHE)."""
    manifest = json.loads(manifest_path.read_text())
    if not isinstance(manifest, dict) or "stats" not in manifest:
        raise KeyError("'stats' in the manifest")
    stats = manifest["stats"]
    missing = [key for key in ("split_sizes", "rules", "used") if key not in stats]
    if missing:  # training and its report read these
        raise KeyError(f"{missing[0]!r} in the manifest's stats")
    if not isinstance(stats.get("rules"), dict) or not isinstance(stats.get("used"), int):
        raise ValueError("the manifest's rules or image count are not what training writes")
    with np.load(cache, allow_pickle=False) as z:
        prepared = Prepared(z["crops"], z["labels"], z["splits"], list(z["files"]), stats=stats)
    lengths = {len(prepared.crops), len(prepared.labels), len(prepared.splits), len(prepared.files)}
    if len(lengths) != 1:
        raise ValueError(f"its arrays differ in length {sorted(lengths)}")
    return prepared


def warn_if_faceless(stats: dict) -> None:
    """Say so when most images gave no face at all: the classifier would learn whole images,
    which is what a folder of the wrong pictures looks like."""
    whole = stats["rules"].get("no_face_whole_image", 0)
    if whole > stats["used"] / 2:
        log.warning(
            "no face was found in %d of the %d images, so the classifier learns from the whole "
            "image there; are these photos of faces?",
            whole,
            stats["used"],
        )


def limited(images: list[tuple[Path, str]], limit: int) -> list[tuple[Path, str]]:
    """At most ``limit`` images of each class, spread evenly over its sorted files; a class
    with fewer is taken whole, and the log says so (its share in the run is then larger)."""
    picked = []
    for label in sorted({label for _, label in images}):
        of_class = [item for item in images if item[1] == label]
        if len(of_class) < limit:
            log.warning(
                "class %r has only %d images, fewer than --limit %d: all are used",
                label,
                len(of_class),
                limit,
            )
        picked += spread(of_class, limit)
    return picked


def prepare(
    data: Path,
    cache_dir: Path,
    seed: int = 0,
    device: torch.device | None = None,
    detector_config: DetectorConfig | None = None,
    crop: CropConfig | None = None,
    progress: bool = True,
    limit: int | None = None,
) -> Prepared:
    """Crop, group and split ``data``; reuse the cache when files and settings are unchanged.

    ``limit`` takes at most that many images of each class, spread evenly over its sorted
    files, for a quick trial; the rules, grouping and split are those of the whole set.
    Writes ``manifest.json`` (every file, its label, group, split and rule) beside the cache.
    """
    detector_config = detector_config or DetectorConfig()
    crop = crop or CropConfig()
    found = find_images(Path(data))
    if limit is not None:
        found.images = limited(found.images, limit)
    key = _fingerprint(found.images, detector_config, crop)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = cache_dir / f"crops-{key}-seed{seed}.npz"
    manifest_path = cache_dir / f"manifest-{key}-seed{seed}.json"
    if cache.exists() and manifest_path.exists():
        try:
            prepared = read_prepared(cache, manifest_path)
        except DAMAGED_CACHE as exc:
            reason = f"no {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
            log.warning(
                "the prepared crops %s or their manifest %s are damaged (%s); preparing them anew",
                cache,
                manifest_path.name,
                reason,
            )
        else:
            log.info("using prepared crops from %s", cache)
            warn_if_faceless(prepared.stats)
            return prepared

    detector = FaceDetector(detector_config, device)
    second_opinion = second_opinion_for(detector)
    class_names = ("mask", "no_mask")
    crops, labels, files, hashes, rules = [], [], [], [], []
    unreadable = []
    for path, label in tqdm(found.images, desc="cropping faces", unit="img", disable=not progress):
        try:
            rgb = read_rgb(path)
        except ImageError as exc:
            unreadable.append(str(path))
            log.warning("%s", exc)
            continue
        face, rule = face_crop_for_image(rgb, detector, crop, second_opinion)
        crops.append(resize_crop(face, CACHE_SIZE))
        labels.append(class_names.index(label))
        files.append(str(path))
        hashes.append(dhash(rgb))
        rules.append(rule)
    for index, name in enumerate(class_names):
        if index not in labels:
            bad = [f for f, y in found.images if y == name]
            raise DatasetError(
                f"class {name!r} in {data} has no readable images: none of its {len(bad)} "
                f"files decodes as an image (e.g. {bad[0]})"
            )
    groups = group_near_duplicates(hashes)
    splits = split_groups(groups, labels, seed)
    stats = {
        "images": len(found.images),
        "used": len(crops),
        "unreadable": unreadable,
        "not_images": [str(p) for p in found.skipped],
        "left_out": found.left_out,  # bad names, photos under both labels
        "rules": dict(Counter(rules)),
        "groups": len(set(groups)),
        "near_duplicate_images": len(groups) - len(set(groups)),
        "split_sizes": dict(Counter(splits)),
        "seed": seed,
        "limit_per_class": limit,
    }
    manifest = {
        "data": str(data),
        "stats": stats,
        "files": [
            {"file": f, "label": class_names[y], "group": g, "split": s, "rule": r}
            for f, y, g, s, r in zip(files, labels, groups, splits, rules)
        ],
    }
    save_arrays(
        cache,
        crops=np.stack(crops),
        labels=np.array(labels, dtype=np.int64),
        splits=np.array(splits),
        files=np.array(files),
    )
    try:
        write_text(manifest_path, json.dumps(manifest, indent=1))
    except OSError as exc:
        cache.unlink(missing_ok=True)  # crops without their manifest would never be reused
        raise WorkNotSavedError(f"could not save {manifest_path} ({exc.strerror or exc})") from None
    log.info("prepared %d crops: %s", len(crops), stats["rules"])
    warn_if_faceless(stats)
    return Prepared(
        np.stack(crops), np.array(labels, dtype=np.int64), np.array(splits), files, stats=stats
    )
