"""Mask / no-mask classification of face crops with a teacher or student checkpoint."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.crops import resize_crop
from models import checkpoint
from models.checkpoint import CheckpointError, ModelMeta
from models.fuse import fold_batchnorm

log = logging.getLogger(__name__)


# Models trained with detector false boxes have this third class; the checkpoint owns the name.
REJECT_LABEL = checkpoint.REJECT_CLASS


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    probs: tuple[float, ...] = ()  # every class's probability, in the model's class order


def crops_to_tensor(crops: list[np.ndarray], meta: ModelMeta) -> torch.Tensor:
    """Stack RGB uint8 crops of any size into one normalised N x 3 x S x S batch."""
    size = meta.input_size
    batch = np.stack([resize_crop(c, size) for c in crops]).astype(np.float32) / 255.0
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2)
    mean = torch.tensor(meta.mean).view(1, 3, 1, 1)
    std = torch.tensor(meta.std).view(1, 3, 1, 1)
    return (tensor - mean) / std


def class_probs(model: torch.nn.Module, batch: torch.Tensor, mirror: bool) -> torch.Tensor:
    """Class probabilities for a normalised batch; with ``mirror``, the mean of the crop's
    and its mirror image's, from one forward pass of twice the batch.

    A face and its mirror image wear the same mask, and averaging the two answers evens out
    some side-dependent slips. Off by default: on the faces validation split (app path) the
    teacher went from 99.53% to 99.76% but the student fell from 99.05% to 98.82%, so the
    gain is not shown, and it doubles the classify work.
    """
    if not mirror:
        return torch.softmax(model(batch).float(), dim=1)
    probs = torch.softmax(model(torch.cat([batch, batch.flip(3)])).float(), dim=1)
    return (probs[: len(batch)] + probs[len(batch) :]) / 2


class FaceClassifier:
    """A loaded classifier bound to a device; classifies all crops of a frame in one batch."""

    def __init__(
        self,
        model: torch.nn.Module,
        meta: ModelMeta,
        device: torch.device,
        name: str | None = None,
        source: Path | None = None,
        mirror: bool = False,
    ):
        self.meta = meta
        self.mirror = mirror  # also classify the mirror image and average (see class_probs)
        self.device = device
        self.name = name or meta.arch
        self.source = source  # the weights file, named when its scores turn out unusable
        # Folding BatchNorm changes no answer (to float rounding) and speeds the student up.
        self.model = fold_batchnorm(model).to(device).eval()
        if device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    @classmethod
    def from_file(
        cls, path: Path | None, arch: str, device: torch.device, mirror: bool = False
    ) -> "FaceClassifier":
        """Load ``arch`` from ``path`` (the committed default weights when None)."""
        path = Path(path) if path else checkpoint.default_weights(arch)
        model, meta = checkpoint.load(path, arch)
        classifier = cls(model, meta, device, name=arch, source=path, mirror=mirror)
        # Finite weights can still overflow; one grey crop finds that at load time, not mid-video.
        grey = np.full((meta.input_size, meta.input_size, 3), 128, dtype=np.uint8)
        classifier.classify([grey])
        log.info("loaded %s from %s", arch, path)
        return classifier

    @torch.inference_mode()
    def probs(self, crops: list[np.ndarray]) -> torch.Tensor:
        """N x classes probabilities of a non-empty list of RGB crops."""
        batch = crops_to_tensor(crops, self.meta).to(self.device)
        if self.device.type == "cpu":
            batch = batch.contiguous(memory_format=torch.channels_last)
        return class_probs(self.model, batch, self.mirror).cpu()

    def classify(self, crops: list[np.ndarray]) -> list[Prediction]:
        """Label every crop; an empty list gives an empty answer without touching the model.

        Raises:
            CheckpointError: when the model's scores are NaN or infinite.
        """
        if not crops:
            return []
        probs = self.probs(crops)
        if not torch.isfinite(probs).all():  # a NaN score would break the events format
            where = self.source or f"the {self.name} model"
            raise CheckpointError(
                f"{where} gives scores that are not numbers; its weights are unusable"
            )
        scores, indices = probs.max(dim=1)
        names = self.meta.class_names
        return [
            Prediction(names[i], float(s), tuple(p))
            for i, s, p in zip(indices.tolist(), scores.tolist(), probs.tolist())
        ]
