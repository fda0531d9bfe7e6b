"""WideResNet-depth-k (Zagoruyko & Komodakis, BMVC 2016); WRN-34-10 is the Madry/TRADES backbone."""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ladlit.models.base import ResidualNet, classifier_head


class WideBlock(nn.Module):
    """Pre-activation wide block (BN-ReLU-conv x2), 1x1 projection when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float = 0.0) -> None:
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


class WideResNet(ResidualNet):
    """WRN-`depth`-`widen_factor`: three stages of (depth-4)/6 blocks, widths 16k, 32k, 64k."""

    def __init__(
        self,
        num_classes: int = 10,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        depth: int = 34,
        widen_factor: int = 10,
        dropout: float = 0.0,
    ) -> None:
        if (depth - 4) % 6:
            raise ValueError(f"model.depth must be 6n+4 (e.g. 28, 34), got {depth}")
        n = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        blocks, in_planes = [], 16
        for stage, planes in enumerate(widths):
            for i in range(n):
                blocks.append(WideBlock(in_planes, planes, 2 if stage > 0 and i == 0 else 1, dropout))
                in_planes = planes
        stem = nn.Conv2d(len(mean), 16, 3, 1, 1, bias=False)
        super().__init__(mean, std, stem, blocks, classifier_head(in_planes, num_classes, preact=True))
