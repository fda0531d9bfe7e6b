"""Learning-rate schedules over epochs, built once the trainer knows `max_epochs`."""

from __future__ import annotations

from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR

from ladlit.checks import check_unit_interval


def piecewise(
    optimizer: Optimizer, max_epochs: int, milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.1
) -> LRScheduler:
    """Multiply the LR by `gamma` at the given fractions of training (Madry et al. / Rice et al.)."""
    check_unit_interval("gamma", gamma)
    for milestone in milestones:
        check_unit_interval("milestones", milestone)
    return MultiStepLR(optimizer, sorted({max(1, round(m * max_epochs)) for m in milestones}), gamma)


def cosine(optimizer: Optimizer, max_epochs: int) -> LRScheduler:
    """Cosine annealing to zero over the run."""
    return CosineAnnealingLR(optimizer, T_max=max(1, max_epochs))
