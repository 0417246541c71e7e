"""Measure classifier throughput (crops per second) the way the app runs it."""

from __future__ import annotations

import time

import torch
import torch.nn as nn


@torch.inference_mode()
def crops_per_second(
    model: nn.Module,
    input_size: int,
    batch: int,
    device: torch.device,
    seconds: float = 1.0,
    half: bool = False,
) -> float:
    """Forward random batches for about ``seconds`` after a warm-up; return crops/s."""
    model = model.to(device).eval()
    x = torch.randn(batch, 3, input_size, input_size, device=device)
    if device.type == "cpu":
        model, x = (
            model.to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        )
    if half:
        model, x = model.half(), x.half()
    for _ in range(3):
        model(x)
    _sync(device)
    runs, start = 0, time.perf_counter()
    while True:
        model(x)
        runs += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and runs >= 3:
            break
    if half:
        model.float()
    return runs * batch / elapsed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
