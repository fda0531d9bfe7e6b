"""CIFAR ResNet-20/32/44/56/110 (He et al., "Deep Residual Learning", CVPR 2016, section 4.2).

Shortcuts are option A of the paper (identity; stride-2 subsampling and zero-padded channels),
which gives ResNet-20 its 0.27M parameters. Small widths make the tiny nets used in tests.

Deep ones (56, 110) may need the field's start to train at all under adversarial training
(experiments/RESULTS.md, section 10): He initialisation of the convolutions (He et al., ICCV
2015, as fb.resnet.torch and torchvision apply it: normal, std sqrt(2 / fan_out)) and each residual
branch's last BatchNorm scale at zero (Goyal et al. 2017; torchvision's `zero_init_residual`), so
that every block starts as the identity map: in the ODE view x_{n+1} = x_n + F_n(x_n), a network
that starts with F = 0 and lets training move it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ladlit.errors import ConfigError
from ladlit.models.base import ResidualNet, build_stages, classifier_head


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN, added to the (option A) shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.pad = stride, planes - in_planes

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + shortcut)


class CifarResNet(ResidualNet):
    """Three stages of (depth-2)/6 basic blocks; depth 20 and 56 are the paper's ResNet-20/56."""

    def __init__(
        self,
        num_classes: int = 10,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        depth: int = 20,
        widths: Sequence[int] = (16, 32, 64),
        conv_init: str = "pytorch",
        zero_init_residual: bool = False,
    ) -> None:
        if (depth - 2) % 6:
            raise ConfigError(f"depth must be 6n+2 (e.g. 20, 56), got {depth}", key="depth")
        n = (depth - 2) // 6
        blocks, in_planes = build_stages(BasicBlock, widths[0], widths, [n] * len(widths))
        stem = nn.Sequential(
            nn.Conv2d(len(mean), widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )
        super().__init__(mean, std, stem, blocks, classifier_head(in_planes, num_classes, preact=False))
        if conv_init not in CONV_INITS:
            raise ConfigError(f"conv_init must be one of {', '.join(CONV_INITS)}, got {conv_init!r}", key="conv_init")
        if conv_init == "he":
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for block in self.residual_blocks():
                nn.init.zeros_(block.bn2.weight)


CONV_INITS = ("pytorch", "he")  # PyTorch's default (kaiming uniform, a=sqrt(5)), or He et al.'s normal
