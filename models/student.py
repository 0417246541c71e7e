"""The student: a small depthwise-separable CNN sized for many crops per second on a CPU.

It has well under 3% of the teacher's parameters; its job is to copy the teacher's answers
on face crops, not to be a general image model. Its channel width is a training option
(``--student-width``) and is recorded in the weights file.
"""

import torch
import torch.nn as nn

# The width new students are trained at. Files written before the width was recorded hold
# students of LEGACY_WIDTH.
DEFAULT_WIDTH = 32
LEGACY_WIDTH = 16
WIDTH_RANGE = (4, 128)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(_conv_bn(cin, cin, 3, stride, groups=cin), _conv_bn(cin, cout, 1, 1))


class StudentNet(nn.Module):
    """Stem convolution, four separable stages that halve the map, pooled linear head."""

    def __init__(self, num_classes: int = 2, width: int = DEFAULT_WIDTH, dropout: float = 0.2):
        super().__init__()
        self.width = w = width
        self.features = nn.Sequential(
            _conv_bn(3, w, 3, 2),
            _separable(w, 2 * w, 1),
            _separable(2 * w, 4 * w, 2),
            _separable(4 * w, 8 * w, 2),
            _separable(8 * w, 8 * w, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(8 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


def build_student(num_classes: int = 2, width: int = DEFAULT_WIDTH) -> nn.Module:
    return StudentNet(num_classes=num_classes, width=width)
