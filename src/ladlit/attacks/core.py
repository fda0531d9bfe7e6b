"""The projected-gradient ascent every L-inf attack and adversarial-training defense shares.

Gradients come from `torch.autograd.grad` with respect to the input only, so an attack run
inside `training_step` leaves the parameters' `.grad` untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

Forward = Callable[[Tensor], Tensor]
Objective = Callable[[Tensor], Tensor]  # logits -> scalar to maximise (summed over the batch)


def project(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    """Project onto the L-inf ball of radius `eps` around `x`, intersected with [0, 1]."""
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def uniform_start(x: Tensor, eps: float) -> Tensor:
    """A uniformly random point of the eps-ball (Madry et al.'s random start).

    The noise is drawn in the default (NCHW) layout, so a seed gives the same start whatever
    the memory format of `x` (channels_last draws would land on other pixels).
    """
    noise = torch.empty(x.shape, dtype=x.dtype, device=x.device).uniform_(-eps, eps)
    return (x + noise).clamp_(0.0, 1.0)


def gaussian_start(x: Tensor, sigma: float = 0.001) -> Tensor:
    """x plus small Gaussian noise, clipped to [0, 1]: TRADES' and MART's start (their reference code)."""
    return (x + sigma * torch.randn(x.shape, dtype=x.dtype, device=x.device)).clamp_(0.0, 1.0)


class GradientTap(Protocol):
    """Tensors besides the input whose gradients each ascent step's backward pass also returns
    (the layer-wise defense's hidden-state addends, whose gradients are the adjoints)."""

    def leaves(self) -> Sequence[Tensor]:
        """The tensors, as the last forward pass used them."""

    def receive(self, grads: Sequence[Tensor | None]) -> None:
        """Their gradients, in the same order (None where the loss does not depend on one)."""


def pgd_ascent(
    forward: Forward,
    x: Tensor,
    x_start: Tensor,
    objective: Objective,
    eps: float,
    alpha: float,
    steps: int,
    tap: GradientTap | None = None,
) -> Tensor:
    """`steps` signed-gradient ascent steps of size `alpha` on `objective(forward(x_adv))`; each
    backward pass also hands `tap` the gradients with respect to its leaves."""
    x_adv = x_start.detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        value = objective(forward(x_adv))
        extra = list(tap.leaves()) if tap is not None else []
        grad, *extra_grads = torch.autograd.grad(value, [x_adv, *extra], allow_unused=bool(extra))
        if tap is not None:
            tap.receive(extra_grads)
        x_adv = project(x_adv.detach() + alpha * grad.sign(), x, eps)
    return x_adv.detach()


def cross_entropy_sum(y: Tensor) -> Objective:
    """Summed cross-entropy: per-sample gradients do not depend on the batch size."""
    return lambda logits: F.cross_entropy(logits, y, reduction="sum")


def margin_sum(y: Tensor) -> Objective:
    """Carlini-Wagner margin max_{j != y} z_j - z_y, summed (the CW-inf loss of Madry/TRADES evals)."""

    def objective(logits: Tensor) -> Tensor:
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
        return (other - true).sum()

    return objective
