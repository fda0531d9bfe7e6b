"""MART (Wang et al., "Improving Adversarial Robustness Requires Revisiting Misclassified
Examples", ICLR 2020): a boosted cross-entropy on the adversarial example plus a KL term that
weighs each example by how misclassified its clean version is:

    BCE(p(x'), y) + beta * mean_i KL(p(x_i) || p(x'_i)) * (1 - p_y(x_i)),
    BCE(p, y) = -log p_y - log(1 - max_{k != y} p_k),

with x' from PGD on the cross-entropy started at x + 0.001 N(0, I), BatchNorm in eval mode
during the attack (the reference code's choices).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ladlit.attacks.core import Forward, Objective, cross_entropy_sum, gaussian_start
from ladlit.checks import check_non_negative
from ladlit.defenses.awp import AWP
from ladlit.defenses.base import DefenseOutput, InputAdversarial


def mart_loss(clean_logits: Tensor, adv_logits: Tensor, y: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, boosted CE, weighted KL) of MART on a batch of logits."""
    adv_probs = F.softmax(adv_logits, dim=1)
    top2 = adv_probs.argsort(dim=1)[:, -2:]
    runner_up = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])  # the most likely wrong class
    boosted = F.cross_entropy(adv_logits, y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), runner_up)
    clean_probs = F.softmax(clean_logits, dim=1)
    true_probs = clean_probs.gather(1, y[:, None]).squeeze(1)
    kl = F.kl_div(torch.log(adv_probs + 1e-12), clean_probs, reduction="none").sum(1)
    weighted = (kl * (1.0000001 - true_probs)).mean()
    return boosted + beta * weighted, boosted, weighted


class MART(InputAdversarial):
    """MART with the reference defaults (beta 6 on CIFAR-10)."""

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
        return cross_entropy_sum(y)

    def start(self, x: Tensor) -> Tensor:
        return gaussian_start(x)

    def outer_loss(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, forward: Forward) -> DefenseOutput:
        adv_logits = forward(x_adv)
        loss, boosted, weighted = mart_loss(model(x), adv_logits, y, self.beta)
        return DefenseOutput(
            loss, adv_logits, {"mart/boosted_ce": boosted.detach(), "mart/weighted_kl": weighted.detach()}
        )
