"""AutoAttack (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020), L-inf.

`version="standard"` runs APGD-CE, APGD-T, FAB-T and Square, each on the points the previous
ones left robust; `version="rand"` is the variant for randomised models (APGD-CE and APGD-DLR
with expectation over transformation). The attacks come from `torchattacks`, a maintained
PyPI package whose AutoAttack follows the reference composition, so we do not carry a
private copy of four attacks.

>>> x_adv = AutoAttack(eps=8/255)(model, x, y)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ladlit.attacks.base import Attack


class AutoAttack(Attack):
    """Standard (or `rand`) AutoAttack; `n_classes` is read off the model when None."""

    def __init__(
        self, eps: float = 8 / 255, version: str = "standard", n_classes: int | None = None, seed: int = 0
    ) -> None:
        super().__init__(eps)
        if version not in ("standard", "rand"):
            raise ValueError(f"attack version must be 'standard' or 'rand', got {version!r}")
        self.version, self.n_classes, self.seed = version, n_classes, seed

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        import torchattacks

        n_classes = self.n_classes
        if n_classes is None:
            with torch.no_grad():
                n_classes = model(x[:1]).shape[1]
        attack = torchattacks.AutoAttack(
            model, norm="Linf", eps=self.eps, version=self.version, n_classes=n_classes, seed=self.seed
        )
        return attack(x, y)
