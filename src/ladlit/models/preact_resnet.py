"""PreActResNet-18 (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016),
the standard backbone of PGD-AT / TRADES benchmarks on CIFAR (Rice et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ladlit.models.base import ResidualNet, build_stages, classifier_head


class PreActBlock(nn.Module):
    """BN-ReLU-conv-BN-ReLU-(dropout)-conv with an identity (or 1x1 projection) shortcut.

    Also the block of WideResNet, which adds dropout between the convolutions.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + shortcut


class PreActResNet(ResidualNet):
    """Pre-activation ResNet; `num_blocks=(2, 2, 2, 2)` is PreActResNet-18."""

    def __init__(
        self,
        num_classes: int = 10,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        num_blocks: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
    ) -> None:
        blocks, in_planes = build_stages(PreActBlock, widths[0], widths, num_blocks)
        stem = nn.Conv2d(len(mean), widths[0], 3, 1, 1, bias=False)
        super().__init__(mean, std, stem, blocks, classifier_head(in_planes, num_classes, preact=True))
