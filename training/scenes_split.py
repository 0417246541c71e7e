"""A fixed, seeded train / test split of a scenes set, with near-duplicate photos kept together.

Scene photos feed training (face crops and the detector's false boxes) only from ``train``;
the evaluation reports leak-free figures on ``test``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from app.atomic import write_text
from app.images import pillow_warnings_logged
from training.dedup import group_near_duplicates
from training.voc import ScenePair

log = logging.getLogger(__name__)

TEST_FRACTION = 0.5
THUMB = (9, 8)


# What opening a damaged or foreign file can raise in PIL (as app.images.read_rgb catches).
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _thumb_hash(path: Path) -> int | None:
    """A 64-bit difference hash of the photo; None when it cannot be decoded."""
    try:
        with pillow_warnings_logged(path), Image.open(path) as image:
            gray = image.convert("L").resize(THUMB, Image.Resampling.BOX)
    except UNREADABLE as exc:  # its reader warns, if it is in the split that is read
        log.debug("cannot hash %s for the split: %s", path, exc)
        return None
    pixels = np.asarray(gray, dtype=np.int16).flatten().tolist()
    bits = [pixels[r * 9 + c + 1] > pixels[r * 9 + c] for r in range(8) for c in range(8)]
    return sum(1 << i for i, b in enumerate(bits) if b)


def _unit(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_scenes(
    pairs: list[ScenePair], seed: int = 0, test_fraction: float = TEST_FRACTION
) -> dict[str, str]:
    """Image stem -> "train" or "test"; a near-duplicate group shares one split.

    A group's split depends only on the seed and its first member's name, so adding photos
    to the set does not move the others. An image that cannot be decoded forms a group of
    its own (the readers that use the split then skip it with their own warning).
    """
    hashes = [_thumb_hash(p.image) for p in pairs]
    readable = [i for i, h in enumerate(hashes) if h is not None]
    groups = [-1 - i for i in range(len(pairs))]  # alone, unless hashed below
    for i, group in zip(readable, group_near_duplicates([hashes[i] for i in readable])):
        groups[i] = group
    first: dict[int, str] = {}
    for pair, group in zip(pairs, groups):
        first.setdefault(group, pair.image.stem)
    return {
        pair.image.stem: ("test" if _unit(f"{seed}:{first[g]}") < test_fraction else "train")
        for pair, g in zip(pairs, groups)
    }


def write_manifest(path: Path, splits: dict[str, str], seed: int) -> None:
    write_text(
        path, json.dumps({"seed": seed, "test_fraction": TEST_FRACTION, "splits": splits}, indent=1)
    )
