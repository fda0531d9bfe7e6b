"""WideResNet-depth-k (Zagoruyko & Komodakis, BMVC 2016); WRN-34-10 is the Madry/TRADES backbone."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from torch import nn

from ladlit.errors import ConfigError
from ladlit.models.base import ResidualNet, build_stages, classifier_head
from ladlit.models.preact_resnet import PreActBlock


class WideResNet(ResidualNet):
    """WRN-`depth`-`widen_factor`: three stages of (depth-4)/6 pre-activation blocks, widths 16k, 32k, 64k."""

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
            raise ConfigError(f"depth must be 6n+4 (e.g. 28, 34), got {depth}", key="depth")
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        block = functools.partial(PreActBlock, dropout=dropout)
        blocks, in_planes = build_stages(block, 16, widths, [(depth - 4) // 6] * 3)
        stem = nn.Conv2d(len(mean), 16, 3, 1, 1, bias=False)
        super().__init__(mean, std, stem, blocks, classifier_head(in_planes, num_classes, preact=True))
