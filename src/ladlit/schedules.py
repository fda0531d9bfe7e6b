"""Learning-rate schedules over epochs, built once the trainer knows `max_epochs`.

Each takes `warmup_epochs`: a linear ramp from `warmup_start` x the LR up to the LR over the
first epochs, then the schedule over the epochs left. Deep CIFAR ResNets under adversarial
training can sit at chance when they start at the full LR (experiments/RESULTS.md, section 10);
He et al. (2016) trained ResNet-110 at a tenth of the LR first, Goyal et al. (2017) ramp it up.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, MultiStepLR, SequentialLR

from ladlit.checks import check_non_negative, check_unit_interval
from ladlit.errors import ConfigError


def piecewise(
    optimizer: Optimizer,
    max_epochs: int,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
    warmup_epochs: int = 0,
    warmup_start: float = 0.1,
) -> LRScheduler:
    """Multiply the LR by `gamma` at the given fractions of training (Madry et al. / Rice et al.);
    the milestones count from the end of the warm-up."""
    check_unit_interval("gamma", gamma, "the LR factor at each milestone, e.g. 0.1")
    for milestone in milestones:
        check_unit_interval("milestones", milestone, "fractions of training, e.g. [0.5, 0.75]")
    epochs = _after_warmup(max_epochs, warmup_epochs, warmup_start)
    main = MultiStepLR(optimizer, sorted({max(1, round(m * epochs)) for m in milestones}), gamma)
    return _with_warmup(optimizer, main, warmup_epochs, warmup_start)


def cosine(optimizer: Optimizer, max_epochs: int, warmup_epochs: int = 0, warmup_start: float = 0.1) -> LRScheduler:
    """Cosine annealing to zero over the run (over what is left of it after the warm-up)."""
    epochs = _after_warmup(max_epochs, warmup_epochs, warmup_start)
    return _with_warmup(optimizer, CosineAnnealingLR(optimizer, T_max=max(1, epochs)), warmup_epochs, warmup_start)


def _after_warmup(max_epochs: int, warmup_epochs: int, warmup_start: float) -> int:
    """The epochs the main schedule gets; refuses a warm-up that leaves none."""
    check_non_negative("warmup_epochs", warmup_epochs)
    if warmup_epochs and not 0 < warmup_start <= 1:
        raise ConfigError(
            f"warmup_start must be in (0, 1] (the first warm-up epoch's LR as a fraction of the LR, usually 0.1), "
            f"got {warmup_start}",
            key="warmup_start",
        )
    if warmup_epochs and warmup_epochs >= max_epochs:
        raise ConfigError(
            f"warmup_epochs={warmup_epochs} leaves no epoch of the schedule (trainer.max_epochs={max_epochs})",
            key="warmup_epochs",
        )
    return max_epochs - warmup_epochs


def _with_warmup(optimizer: Optimizer, main: LRScheduler, warmup_epochs: int, warmup_start: float) -> LRScheduler:
    if not warmup_epochs:
        return main
    ramp = LinearLR(optimizer, start_factor=warmup_start, end_factor=1.0, total_iters=warmup_epochs)
    return SequentialLR(optimizer, [ramp, main], milestones=[warmup_epochs])
