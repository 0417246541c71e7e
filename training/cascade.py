"""MTCNN's three stages run one at a time on one image, so training can see each stage's input.

facenet-pytorch's ``detect_face`` runs the whole cascade in one call; to fine-tune R-Net and
O-Net on the boxes the earlier stages really propose (hard negatives included), and to tell
which stage loses a face, the stages are exposed here. The arithmetic (pyramid, window
generation, NMS, box regression, squaring, clipped crops resized with area interpolation)
is facenet-pytorch's own helpers, called in the same order, so a crop made here is the crop
the detector's next stage receives in the app.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from facenet_pytorch.models.utils.detect_face import (
    batched_nms,
    batched_nms_numpy,
    bbreg,
    generateBoundingBox,
    imresample,
    pad,
    rerec,
)

WINDOW = {"pnet": 12, "rnet": 24, "onet": 48}


@dataclass
class Stages:
    """Candidate boxes (N x 5: x1, y1, x2, y2, score) after each stage, in image pixels."""

    proposals: torch.Tensor  # after P-Net, regressed and squared: R-Net's inputs
    refined: torch.Tensor  # after R-Net, regressed and squared: O-Net's inputs
    final: torch.Tensor  # after O-Net, regressed (not squared): the detector's output


def as_batch(image_rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """H x W x 3 uint8 -> 1 x 3 x H x W float, the layout the stages take."""
    return (
        torch.as_tensor(np.array(image_rgb, copy=True), device=device)
        .permute(2, 0, 1)[None]
        .float()
    )


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) * 0.0078125


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    scale, side, scales = 12.0 / min_face, min(height, width) * 12.0 / min_face, []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


@torch.inference_mode()
def propose(
    pnet, image: torch.Tensor, min_face: float, factor: float, threshold: float
) -> torch.Tensor:
    """P-Net over the pyramid: squared candidate boxes with their P-Net scores."""
    h, w = image.shape[2:]
    found = []
    for scale in pyramid_scales(h, w, min_face, factor):
        scaled = normalise(imresample(image, (int(h * scale + 1), int(w * scale + 1))))
        reg, probs = pnet(scaled)
        boxes, inds = generateBoundingBox(reg, probs[:, 1], scale, threshold)
        found.append(boxes[batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.5)])
    boxes = torch.cat(found) if found else torch.zeros(0, 9, device=image.device)
    if len(boxes) == 0:
        return torch.zeros(0, 5, device=image.device)
    boxes = boxes[batched_nms(boxes[:, :4], boxes[:, 4], torch.zeros_like(boxes[:, 4]), 0.7)]
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    regressed = torch.stack(
        [
            boxes[:, 0] + boxes[:, 5] * width,
            boxes[:, 1] + boxes[:, 6] * height,
            boxes[:, 2] + boxes[:, 7] * width,
            boxes[:, 3] + boxes[:, 8] * height,
            boxes[:, 4],
        ],
        dim=1,
    )
    return rerec(regressed)


def crops(image: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Normalised size x size crops of ``boxes`` (clipped to the image, as the detector does).

    Returns the crops and the indices of the boxes they belong to (boxes clipped to nothing
    are left out).
    """
    if len(boxes) == 0:
        return torch.zeros(0, 3, size, size, device=image.device), np.zeros(0, dtype=int)
    h, w = image.shape[2:]
    y, ey, x, ex = pad(boxes.clone(), w, h)
    out, kept = [], []
    for k in range(len(y)):
        if ey[k] > y[k] - 1 and ex[k] > x[k] - 1:
            out.append(imresample(image[:, :, y[k] - 1 : ey[k], x[k] - 1 : ex[k]], (size, size)))
            kept.append(k)
    if not out:
        return torch.zeros(0, 3, size, size, device=image.device), np.zeros(0, dtype=int)
    return normalise(torch.cat(out)), np.array(kept)


@torch.inference_mode()
def refine(
    net, image: torch.Tensor, boxes: torch.Tensor, size: int, threshold: float, last: bool
) -> torch.Tensor:
    """R-Net (``last=False``) or O-Net (``last=True``) on the boxes of the stage before."""
    batch, kept = crops(image, boxes, size)
    if len(kept) == 0:
        return torch.zeros(0, 5, device=image.device)
    out = net(batch)
    reg, probs = out[0], out[-1]
    boxes = boxes[torch.as_tensor(kept, device=image.device)]
    keep = probs[:, 1] > threshold
    boxes = torch.cat([boxes[keep, :4], probs[keep, 1:2]], dim=1)
    reg = reg[keep]
    zeros = torch.zeros(len(boxes), device=image.device)
    if last:
        boxes = bbreg(boxes, reg)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], zeros, 0.7, "Min")
        return boxes[pick]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], zeros, 0.7)
    return rerec(bbreg(boxes[pick], reg[pick]))


@torch.inference_mode()
def run_stages(
    nets, image_rgb: np.ndarray, min_face: float, thresholds, factor: float = 0.709
) -> Stages:
    """All three stages on one RGB image; ``nets`` has ``pnet``, ``rnet`` and ``onet``."""
    device = next(nets.pnet.parameters()).device
    image = as_batch(image_rgb, device)
    proposals = propose(nets.pnet, image, min_face, factor, thresholds[0])
    refined = refine(nets.rnet, image, proposals, 24, thresholds[1], last=False)
    final = refine(nets.onet, image, refined, 48, thresholds[2], last=True)
    return Stages(proposals, refined, final)
