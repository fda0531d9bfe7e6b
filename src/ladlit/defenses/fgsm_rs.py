"""FGSM adversarial training with a random start (Wong, Rice and Kolter, "Fast is better than
free: Revisiting adversarial training", ICLR 2020): a uniform start in the eps-ball, one signed
gradient step of 1.25 eps, projection back onto the ball. About half the cost of PGD-3 per
epoch, and known to over-fit catastrophically (`ladlit.callbacks.CatastrophicOverfitting`)."""

from __future__ import annotations

from ladlit.checks import check_non_negative
from ladlit.defenses.awp import AWP
from ladlit.defenses.pgd import PGDTraining


class FGSMRS(PGDTraining):
    """FGSM-RS: PGD-AT's inner loop cut to one step of `step_ratio * eps` from a uniform start.

    Under a layer-wise defense (`defense=lad defense@defense.base=fgsm_rs`) the adjoints come from
    that one backward pass.
    """

    def __init__(
        self, eps: float = 8 / 255, step_ratio: float = 1.25, bn_mode: str = "train", awp: AWP | None = None
    ) -> None:
        self.step_ratio = check_non_negative("step_ratio", step_ratio)
        super().__init__(
            eps=eps, alpha=min(1.0, step_ratio * eps), steps=1, random_start=True, bn_mode=bn_mode, awp=awp
        )
