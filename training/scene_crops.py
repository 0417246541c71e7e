"""Extra training crops from the train split of an annotated scenes set.

Street and indoor photos hold small, blurred, turned faces that the tight crops of a class
folder lack. From each training scene we take the crop of every annotated face (with_mask as
``mask``, without_mask as ``no_mask``; wrongly worn masks are left out, they are neither) and,
when ``negatives`` is set, the crops of the detector's own false boxes, labelled
``not_face``, so the classifier learns to reject what MTCNN mistakes for a face.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from app.config import CropConfig, DetectorConfig
from app.crops import crop_face, resize_crop
from app.detector import FaceDetector
from app.images import ImageError, read_rgb
from models import detector_checkpoint
from training.dataset_files import NAMED_AT_MOST
from training.detection_metrics import iou_matrix
from training.outputs import save_arrays
from training.prepare import CACHE_SIZE, file_stamp
from training.scenes_split import split_scenes
from training.voc import AnnotationError, faces_in_image, find_scenes, parse_annotation

log = logging.getLogger(__name__)

NEGATIVE_MAX_IOU = 0.2  # a detection overlapping no face more than this is a false box
SCENE_LABELS = {"with_mask": "mask", "without_mask": "no_mask"}


def scene_training_crops(
    scenes: Path,
    class_names: tuple[str, ...],
    cache_dir: Path,
    seed: int = 0,
    negatives: DetectorConfig | None = None,
    device: torch.device | None = None,
    crop: CropConfig | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Crops (N x 128 x 128 x 3 RGB), label indices into ``class_names`` and counts.

    Only scenes of the ``train`` split are read. ``not_face`` must be in ``class_names``
    when ``negatives`` is given. The cache is keyed on the size and modification time of
    each training image and annotation too, so a corrected label is cropped anew. A scene
    whose image or annotation cannot be read is left out with a warning, cached or not.
    """
    crop = crop or CropConfig()
    files = find_scenes(scenes)
    splits = split_scenes(files.pairs, seed)
    train = [p for p in files.pairs if splits[p.image.stem] == "train"]
    digest = hashlib.sha1(
        json.dumps(
            [
                str(scenes),
                seed,
                sorted(s for s in splits),
                asdict(crop),
                asdict(negatives) if negatives else None,
                detector_checkpoint.identity(negatives.weights) if negatives else None,
                class_names,
                CACHE_SIZE,
            ]
        ).encode()
    )
    for pair in train:
        digest.update(file_stamp(pair.image, "image") + file_stamp(pair.annotation, "boxes"))
    cache = Path(cache_dir) / f"scene-crops-{digest.hexdigest()[:16]}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            cached, stats = (z["crops"], z["labels"]), json.loads(str(z["stats"]))
        warn_unreadable(stats["unreadable"])
        return *cached, stats
    detector = FaceDetector(negatives, device) if negatives else None
    crops, labels, unreadable = [], [], []
    for pair in tqdm(train, desc="scene crops", unit="img", disable=not progress):
        try:
            annotation = parse_annotation(pair.annotation)
            rgb = read_rgb(pair.image)
        except (AnnotationError, ImageError) as exc:
            unreadable.append(str(exc))
            continue
        for face in faces_in_image(annotation.faces, rgb.shape[:2], pair.annotation):
            if face.name in SCENE_LABELS:
                crops.append(resize_crop(crop_face(rgb, face.box, crop), CACHE_SIZE))
                labels.append(class_names.index(SCENE_LABELS[face.name]))
        if detector is None:
            continue
        boxes = [d.box for d in detector.detect(rgb)]
        truth = [f.box for f in annotation.faces]
        overlaps = iou_matrix(boxes, truth)
        for i, box in enumerate(boxes):
            if not truth or overlaps[i].max() <= NEGATIVE_MAX_IOU:
                crops.append(resize_crop(crop_face(rgb, box, crop), CACHE_SIZE))
                labels.append(class_names.index("not_face"))
    counts = Counter(class_names[y] for y in labels)
    stats = {
        "scenes": str(scenes),
        "train_images": len(train),
        "unreadable": unreadable,
        "crops": dict(counts),
        "negatives": asdict(negatives) if negatives else None,
    }
    stacked = np.stack(crops) if crops else np.zeros((0, CACHE_SIZE, CACHE_SIZE, 3), np.uint8)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_arrays(
        cache,
        crops=stacked,
        labels=np.array(labels, dtype=np.int64),
        stats=np.array(json.dumps(stats)),
    )
    warn_unreadable(unreadable)
    log.info("scene crops: %s", stats["crops"])
    return stacked, np.array(labels, dtype=np.int64), stats


def warn_unreadable(unreadable: list[str]) -> None:
    """Say which training scenes were left out because their image or annotation cannot be
    read: a line each, or one line naming the first few when there are many."""
    if len(unreadable) <= NAMED_AT_MOST:
        for reason in unreadable:
            log.warning("%s", reason)
        return
    log.warning(
        "%d training scenes left out, their image or annotation unreadable (all are listed in "
        "the report under scene_crops.unreadable), among them: %s",
        len(unreadable),
        "; ".join(unreadable[:NAMED_AT_MOST]),
    )
