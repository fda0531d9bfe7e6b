"""PGD adversarial training (Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018): minimise the cross-entropy at the PGD-maximised input."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ladlit.attacks.core import Forward, Objective, cross_entropy_sum, uniform_start
from ladlit.defenses.awp import AWP
from ladlit.defenses.base import DefenseOutput, InputAdversarial


class PGDTraining(InputAdversarial):
    """PGD-AT. Defaults are the CIFAR standard: eps 8/255, step 2/255, 10 steps, random start.

    `bn_mode="train"` runs the attack with batch statistics, as Rice et al. (2020)'s reference code.
    """

    def __init__(
        self,
        eps: float = 8 / 255,
        alpha: float | None = None,
        steps: int = 10,
        random_start: bool = True,
        bn_mode: str = "train",
        awp: AWP | None = None,
    ) -> None:
        super().__init__(eps, alpha, steps, bn_mode, awp)
        self.random_start = random_start

    def objective(self, model: nn.Module, x: Tensor, y: Tensor) -> Objective:
        return cross_entropy_sum(y)

    def start(self, x: Tensor) -> Tensor:
        return uniform_start(x, self.eps) if self.random_start else x

    def outer_loss(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, forward: Forward) -> DefenseOutput:
        logits = forward(x_adv)
        return DefenseOutput(F.cross_entropy(logits, y), logits)
