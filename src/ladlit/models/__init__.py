"""Residual backbones taking [0, 1] images; each exposes `residual_blocks()` in forward order."""

from ladlit.models.base import Normalize, ResidualNet, find_residual_blocks
from ladlit.models.cifar_resnet import CifarResNet
from ladlit.models.preact_resnet import PreActResNet
from ladlit.models.wide_resnet import WideResNet

__all__ = ["Normalize", "ResidualNet", "find_residual_blocks", "CifarResNet", "PreActResNet", "WideResNet"]
