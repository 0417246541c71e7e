"""Whether an evaluation's seeded split is the one the evaluated weights were trained on.

``training.distill`` records its ``--seed`` in a classifier's metadata (``extra["seed"]``):
the seed of the class-folder split it learnt from, and of the scenes split too when it took
scene crops (its recorded ``data`` then names a scenes set's train split).
``training.tune_detector`` records its ``--seed`` in the detector weights' metadata: the seed
of the scenes split it tuned on, and of the class-folder split when it took face photos. A
test split drawn at another seed holds some of their training images, so figures on it are
not leak-free; ``training.evaluate`` warns of that rather than refuse, as such a run may be
meant (a look at another split's spread, say).

Known shortcoming: only the seed is compared, not which set the weights learnt from; weights
trained on another set entirely are warned about at another seed all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.checkpoint import ModelMeta

SCENES_MARK = "(train split)"  # how distill's recorded data names its scenes set


@dataclass(frozen=True)
class TrainedOn:
    """The seeded splits one weights file learnt from: its name and seed by layout."""

    weights: str  # as the warning names them ("student weights models/student.pt")
    seeds: dict[str, int]  # "classes" and/or "scenes" -> the split seed


def _whole(value: Any) -> int | None:
    """A recorded seed, or None for a record without one (or a hand-edited, odd one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classifier_splits(meta: ModelMeta, weights: str) -> TrainedOn:
    """The splits a classifier made by ``training.distill`` learnt from."""
    seed = _whole(meta.extra.get("seed"))
    if seed is None:
        return TrainedOn(weights, {})
    seeds = {"classes": seed}
    if SCENES_MARK in meta.data:
        seeds["scenes"] = seed
    return TrainedOn(weights, seeds)


def detector_splits(meta: dict, weights: str) -> TrainedOn:
    """The splits detector weights made by ``training.tune_detector`` were tuned on."""
    seed = _whole(meta.get("seed"))
    if seed is None:
        return TrainedOn(weights, {})
    seeds = {"scenes": seed}
    if meta.get("face_photos"):
        seeds["classes"] = seed
    return TrainedOn(weights, seeds)


def split_warnings(layout: str, split: str, seed: int, trained: list[TrainedOn]) -> list[str]:
    """One line for each weights file whose own split of ``layout`` is not the ``split`` at
    ``seed`` measured (none for ``--split all``, which mixes every part anyway)."""
    if split == "all":
        return []
    if split == "train":
        consequence = "it is not the set they learnt from"
    else:
        consequence = "it holds some of their training images, so these figures are not leak-free"
    said = []
    for weights in trained:
        theirs = weights.seeds.get(layout)
        if theirs is not None and theirs != seed:
            said.append(
                f"--split {split} at --seed {seed} is not the split the {weights.weights} were "
                f"trained on (--seed {theirs}): {consequence}; give --seed {theirs} to measure "
                "on theirs"
            )
    return said
