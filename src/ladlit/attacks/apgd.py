"""APGD-CE (Croce & Hein, ICML 2020): step-size-free PGD with momentum on the cross-entropy, the
first stage of standard AutoAttack. Via torchattacks, configured as AutoAttack runs it: an input
comes back changed only where the attack fools the model (misclassified clean inputs are never
attacked), so the returned batch scores exactly the robust accuracy.

>>> x_adv = APGDCE(eps=8/255, steps=100)(model, x, y)
"""

from __future__ import annotations

from torch import Tensor, nn

from ladlit.attacks.base import Attack


class APGDCE(Attack):
    """APGD on the cross-entropy: `steps` iterations, `restarts` random restarts."""

    def __init__(self, eps: float = 8 / 255, steps: int = 100, restarts: int = 1, seed: int = 0) -> None:
        super().__init__(eps)
        self.steps, self.restarts, self.seed = steps, restarts, seed

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        import torchattacks

        return torchattacks.APGD(
            model, norm="Linf", eps=self.eps, steps=self.steps, n_restarts=self.restarts, loss="ce", seed=self.seed
        )(x, y)
