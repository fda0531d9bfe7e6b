"""Square Attack (Andriushchenko et al., "Square Attack: a query-efficient black-box adversarial
attack via random search", ECCV 2020), L-inf, score-based: it never reads a gradient, which
makes it the gradient-masking checklist's black-box reference. Via torchattacks.

>>> x_adv = Square(eps=8/255, n_queries=1000)(model, x, y)
"""

from __future__ import annotations

from torch import Tensor, nn

from ladlit.attacks.base import Attack


class Square(Attack):
    """Square Attack with `n_queries` model queries per example."""

    def __init__(self, eps: float = 8 / 255, n_queries: int = 1000, seed: int = 0) -> None:
        super().__init__(eps)
        self.n_queries, self.seed = n_queries, seed

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        import torchattacks

        return torchattacks.Square(model, norm="Linf", eps=self.eps, n_queries=self.n_queries, seed=self.seed)(x, y)
