"""PGD-k with restarts (Madry et al., "Towards Deep Learning Models Resistant to Adversarial
Attacks", ICLR 2018), its CW-inf variant (margin loss, Carlini & Wagner 2017) and FGSM
(Goodfellow et al., ICLR 2015).

>>> x_adv = PGD(eps=8/255, steps=20, restarts=1)(model, x, y)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ladlit.attacks.base import Attack
from ladlit.attacks.core import cross_entropy_sum, margin_sum, pgd_ascent, uniform_start
from ladlit.checks import check_pixel_budget, check_positive_int

LOSSES = {"ce": cross_entropy_sum, "margin": margin_sum}


class PGD(Attack):
    """L-inf PGD; with restarts, each example keeps the first restart that fools the model.

    Args:
        eps: L-inf budget in [0, 1] pixel units.
        alpha: step size (None: eps/4, i.e. 2/255 at 8/255).
        steps: ascent steps per restart.
        restarts: independent random starts.
        random_start: start uniformly in the eps-ball (else at x).
        loss: "ce" (cross-entropy) or "margin" (CW-inf).
    """

    def __init__(
        self,
        eps: float = 8 / 255,
        alpha: float | None = None,
        steps: int = 20,
        restarts: int = 1,
        random_start: bool = True,
        loss: str = "ce",
    ) -> None:
        super().__init__(eps)
        if loss not in LOSSES:
            raise ValueError(f"attack loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.alpha = check_pixel_budget("alpha", eps / 4 if alpha is None else alpha)
        self.steps = check_positive_int("steps", steps)
        self.restarts = check_positive_int("restarts", restarts)
        self.random_start, self.loss = random_start, loss

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        best = x.clone()
        robust = torch.ones_like(y, dtype=torch.bool)
        for _ in range(self.restarts):
            start = uniform_start(x, self.eps) if self.random_start else x
            x_adv = pgd_ascent(model, x, start, LOSSES[self.loss](y), self.eps, self.alpha, self.steps)
            with torch.no_grad():
                fooled = model(x_adv).argmax(1) != y
            # Keep every candidate while an example is still robust: the last restart's point is
            # the strongest we have; once fooled, freeze that example.
            best = torch.where(robust[:, None, None, None], x_adv, best)
            robust &= ~fooled
            if not robust.any():
                break
        return best


class FGSM(PGD):
    """Fast gradient sign method: one step of size eps from x."""

    def __init__(self, eps: float = 8 / 255) -> None:
        super().__init__(eps=eps, alpha=eps, steps=1, restarts=1, random_start=False, loss="ce")
