"""What every backbone shares: [0,1] input -> Normalize -> stem -> residual blocks -> head.

The flat `blocks` sequence, in forward order, is the named place the layer-wise defense hooks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn


class Normalize(nn.Module):
    """Per-channel standardisation as the first layer, so attacks work in [0, 1] pixel units."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class ResidualNet(nn.Module):
    """A residual network split into `stem`, `blocks` (forward order) and `head`."""

    def __init__(
        self, mean: Sequence[float], std: Sequence[float], stem: nn.Module, blocks: Iterable[nn.Module], head: nn.Module
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(self.normalize(x))))

    def residual_blocks(self) -> list[nn.Module]:
        """The residual blocks x_{n+1} = F_n(x_n), in forward order."""
        return list(self.blocks)


def find_residual_blocks(
    model: nn.Module, types: Sequence[str] | None = None, name_pattern: str | None = None
) -> list[nn.Module]:
    """Residual blocks of any network, in forward order.

    Our models answer through `residual_blocks()`. For others (e.g. torchvision's ResNet), blocks
    are the modules whose class name is in `types` (e.g. ["BasicBlock", "Bottleneck"]) or whose
    qualified name matches `name_pattern`; module registration order is taken as forward order,
    which holds for sequential residual networks.
    """
    if types is None and name_pattern is None:
        if hasattr(model, "residual_blocks"):
            return list(model.residual_blocks())
        types = ("BasicBlock", "Bottleneck")
    pattern = re.compile(name_pattern) if name_pattern else None
    blocks = [
        module
        for name, module in model.named_modules()
        if (types and type(module).__name__ in types) or (pattern and name and pattern.fullmatch(name))
    ]
    if not blocks:
        raise ValueError(
            f"No residual blocks found in {type(model).__name__} (types={types}, name_pattern={name_pattern})."
        )
    return blocks


def build_stages(
    make_block: Callable[[int, int, int], nn.Module],
    in_planes: int,
    widths: Sequence[int],
    blocks_per_stage: Sequence[int],
) -> tuple[list[nn.Module], int]:
    """Blocks of all stages in forward order; each stage after the first opens with stride 2.

    `make_block(in_planes, planes, stride)` builds one block. Returns the blocks and the final width.
    """
    blocks = []
    for stage, (planes, n) in enumerate(zip(widths, blocks_per_stage)):
        for i in range(n):
            blocks.append(make_block(in_planes, planes, 2 if stage > 0 and i == 0 else 1))
            in_planes = planes
    return blocks, in_planes


def classifier_head(channels: int, num_classes: int, preact: bool) -> nn.Sequential:
    """Global-average-pool classifier; pre-activation nets end with the BN-ReLU their blocks leave out."""
    layers: list[nn.Module] = [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)] if preact else []
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
