"""Fold BatchNorm into the convolution before it, for inference.

In eval mode a BatchNorm after a convolution is a per-channel scale and shift, which the
convolution's weights and bias can absorb; one layer fewer per block is measurably faster for
the student's small, many-layered network. Only ``Conv2d`` directly followed by
``BatchNorm2d`` inside an ``nn.Sequential`` is folded; everything else is left as it is.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every Conv2d -> BatchNorm2d pair folded."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
            module[i + 1] = nn.Identity()
    return model
