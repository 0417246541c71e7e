"""The teacher: torchvision's DenseNet-121 with a two-class head, built without any download."""

import torch.nn as nn
from torchvision.models import densenet121


def build_teacher(num_classes: int = 2) -> nn.Module:
    """A randomly initialised DenseNet-121; the teacher is always trained from scratch."""
    return densenet121(weights=None, num_classes=num_classes)
