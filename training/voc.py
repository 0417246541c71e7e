"""Read a scenes set: photos in ``images/`` with PASCAL VOC face boxes in ``annotations/``.

The evaluation of the whole pipeline (detector + classifier) compares its faces with these
boxes. VOC classes keep their original names; ``VOC_LABELS`` maps them to app labels.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from training.dataset_files import IMAGE_SUFFIXES, DatasetError

log = logging.getLogger(__name__)

INCORRECT = "mask_weared_incorrect"  # the set's own spelling
VOC_LABELS = {"with_mask": "mask", "without_mask": "no_mask", INCORRECT: None}
VOC_CLASSES = tuple(VOC_LABELS)
IMAGES_DIR, ANNOTATIONS_DIR = "images", "annotations"

Box = tuple[float, float, float, float]
OUTSIDE_LIMIT = 0.5  # a face box with less than this share of its area in the image is wrong


class AnnotationError(ValueError):
    """A VOC annotation file that cannot be parsed or holds an unusable box."""


@dataclass(frozen=True)
class GroundTruth:
    """One annotated face: corner box in image pixels and its VOC class name."""

    box: Box
    name: str

    @property
    def label(self) -> str | None:
        """The app label this face should get; None for a wrongly worn mask."""
        return VOC_LABELS[self.name]

    @property
    def side(self) -> float:
        """The longer side of the box, the face size used for size bins."""
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, y2 - y1)


@dataclass
class Annotation:
    filename: str
    width: int | None
    height: int | None
    faces: list[GroundTruth] = field(default_factory=list)

    def count(self, name: str) -> int:
        return sum(face.name == name for face in self.faces)


@dataclass
class ScenePair:
    image: Path
    annotation: Path


@dataclass
class SceneFiles:
    pairs: list[ScenePair]
    images_without_annotation: list[Path]
    annotations_without_image: list[Path]
    ambiguous_images: list[list[Path]] = field(default_factory=list)  # one stem, two images


def _number(node: ET.Element, tag: str, source: Path) -> float:
    text = node.findtext(tag)
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise AnnotationError(f"{source}: <{tag}> is {text!r}, not a number") from None
    if not math.isfinite(value):  # nan, inf and numbers too large for a float (1e400)
        raise AnnotationError(f"{source}: <{tag}> is {text!r}, not a finite number")
    return value


def parse_annotation(path: Path) -> Annotation:
    """Parse one VOC file.

    Box corners are taken as written (``xmin, ymin, xmax, ymax``); the set has boxes that
    end exactly at the image width, so they are read as corner coordinates, not as
    inclusive 1-based pixel indices.

    Raises:
        AnnotationError: for malformed XML, a number that is missing or not finite, an
            unknown class or a box with no area.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise AnnotationError(f"cannot read annotation {path}: {exc}") from None
    size = root.find("size")
    width = height = None
    if size is not None:
        width, height = (int(_number(size, tag, path)) for tag in ("width", "height"))
    annotation = Annotation(root.findtext("filename") or "", width, height)
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_LABELS:
            raise AnnotationError(f"{path}: unknown class {name!r}; expected {VOC_CLASSES}")
        box_node = obj.find("bndbox")
        if box_node is None:
            raise AnnotationError(f"{path}: object {name!r} has no <bndbox>")
        box = tuple(_number(box_node, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise AnnotationError(f"{path}: box {box} of {name!r} has no area")
        annotation.faces.append(GroundTruth(box, name))
    return annotation


def faces_in_image(
    faces: list[GroundTruth], shape: tuple[int, int], source: Path
) -> list[GroundTruth]:
    """The faces whose boxes lie mostly inside an image of ``shape`` (H, W). A box mostly
    outside is a wrong annotation: it is left out with a warning, not scored as a face the
    detector missed."""
    height, width = shape
    kept = []
    for face in faces:
        x1, y1, x2, y2 = face.box
        inside = max(0.0, min(x2, width) - max(x1, 0)) * max(0.0, min(y2, height) - max(y1, 0))
        if inside < OUTSIDE_LIMIT * (x2 - x1) * (y2 - y1):
            log.warning(
                "skipped a face of %s: box %s lies mostly outside the %dx%d image",
                source,
                face.box,
                width,
                height,
            )
            continue
        kept.append(face)
    return kept


def is_scenes_layout(root: Path) -> bool:
    root = Path(root)
    return (root / IMAGES_DIR).is_dir() and (root / ANNOTATIONS_DIR).is_dir()


def require_scenes_layout(root: Path) -> None:
    """Refuse at once, before hours of other work, a path that is no scenes set at all.

    Raises:
        DatasetError: naming what is wrong: missing, a file, no images/ and annotations/
            folders, or no annotation in them.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root} not found")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file, not a scenes folder")
    if not is_scenes_layout(root):
        raise DatasetError(f"{root} is not a scenes set (expected images/ and annotations/)")
    if not any(p.suffix.lower() == ".xml" for p in (root / ANNOTATIONS_DIR).iterdir()):
        raise DatasetError(f"{root}/{ANNOTATIONS_DIR} holds no .xml annotation")


def find_scenes(root: Path) -> SceneFiles:
    """Pair ``images/NAME.*`` with ``annotations/NAME.xml`` by file stem.

    Two images of one stem (``a.jpg`` and ``a.png``) cannot be told apart by the pairing:
    neither is used, with a warning naming both, so no photo is scored against another's
    boxes.

    Raises:
        DatasetError: when the layout is missing or not a single image has an annotation.
    """
    root = Path(root)
    require_scenes_layout(root)
    by_stem: dict[str, list[Path]] = {}
    for p in sorted((root / IMAGES_DIR).iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            by_stem.setdefault(p.stem, []).append(p)
    annotations = {
        p.stem: p
        for p in sorted((root / ANNOTATIONS_DIR).iterdir())
        if p.suffix.lower() == ".xml" and p.is_file() and not p.name.startswith(".")
    }
    ambiguous = [by_stem[s] for s in sorted(by_stem) if len(by_stem[s]) > 1 and s in annotations]
    for paths in ambiguous:
        log.warning(
            "left out %s: images of one name cannot be told apart by their annotation",
            " and ".join(str(p) for p in paths),
        )
    images = {s: paths[0] for s, paths in by_stem.items() if len(paths) == 1}
    pairs = [ScenePair(images[s], annotations[s]) for s in sorted(images) if s in annotations]
    if not pairs and ambiguous:
        raise DatasetError(
            f"{root}: every annotated image shares its name with another image "
            f"(such as {' and '.join(p.name for p in ambiguous[0])})"
        )
    if not pairs:
        raise DatasetError(f"{root} has no image in images/ with a matching annotations/*.xml")
    lonely_images = [p for s in sorted(by_stem) if s not in annotations for p in by_stem[s]]
    lonely_annotations = [annotations[s] for s in sorted(annotations) if s not in by_stem]
    if lonely_images or lonely_annotations:
        log.warning(
            "%d images without annotation and %d annotations without image in %s",
            len(lonely_images),
            len(lonely_annotations),
            root,
        )
    return SceneFiles(pairs, lonely_images, lonely_annotations, ambiguous)
