"""TRADES (Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy",
ICML 2019): CE(f(x), y) + beta * KL(f(x) || f(x')), x' maximising the KL term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ladlit.attacks.core import Forward, Objective, gaussian_start
from ladlit.checks import check_non_negative
from ladlit.defenses.awp import AWP
from ladlit.defenses.base import DefenseOutput, InputAdversarial


def kl_to(clean_probs: Tensor, logits: Tensor, reduction: str) -> Tensor:
    """KL(clean_probs || softmax(logits))."""
    return F.kl_div(F.log_softmax(logits, dim=1), clean_probs, reduction=reduction)


class TRADES(InputAdversarial):
    """TRADES with the reference defaults: beta 6, start x + 0.001 N(0, I), BatchNorm in eval mode
    during the inner maximisation."""

    def __init__(
        self,
        beta: float = 6.0,
        eps: float = 8 / 255,
        alpha: float | None = None,
        steps: int = 10,
        bn_mode: str = "eval",
        awp: AWP | None = None,
    ) -> None:
        super().__init__(eps, alpha, steps, bn_mode, awp)
        self.beta = check_non_negative("beta", beta)

    def objective(self, model: nn.Module, x: Tensor, y: Tensor) -> Objective:
        with torch.no_grad():
            clean_probs = F.softmax(model(x), dim=1)
        return lambda logits: kl_to(clean_probs, logits, reduction="sum")

    def start(self, x: Tensor) -> Tensor:
        return gaussian_start(x)

    def outer_loss(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, forward: Forward) -> DefenseOutput:
        clean_logits = model(x)
        adv_logits = forward(x_adv)
        natural = F.cross_entropy(clean_logits, y)
        robust = kl_to(F.softmax(clean_logits, dim=1), adv_logits, reduction="batchmean")
        loss = natural + self.beta * robust
        return DefenseOutput(loss, adv_logits, {"trades/natural": natural.detach(), "trades/kl": robust.detach()})
