"""The defense interface: an object the LightningModule calls for each training batch's loss.

A defense is not a Lightning callback because callbacks cannot change what `training_step`
returns; the module owns the optimisation, the defense owns the loss.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from ladlit.attacks.core import Forward, GradientTap, Objective, pgd_ascent
from ladlit.checks import check_pixel_budget, check_positive_int
from ladlit.defenses.awp import AWP


@dataclass
class DefenseOutput:
    """The training loss, the logits it was computed on (for training accuracy), and extra scalars to log."""

    loss: Tensor
    logits: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class EpochEnd:
    """What a defense may read when a training epoch ends. A new need is a new field here, never
    a new argument: every defense's hook keeps its signature."""

    epoch: int  # 0-based, the epoch that just ended
    steps: int  # optimizer steps so far
    mean_loss: float  # the epoch's mean training loss
    num_classes: int


class Defense(ABC):
    """Computes the loss of one training batch."""

    not_compilable: str = ""  # why a torch.compile'd backbone would change what this defense does ("": it would not)

    @abstractmethod
    def training_loss(self, model: nn.Module, x: Tensor, y: Tensor) -> DefenseOutput:
        """Loss to minimise on the batch (x, y), x in [0, 1]."""

    def check_model(self, model: nn.Module) -> None:
        """Raise ConfigError if the defense cannot run on `model` (called before training starts)."""

    def on_train_epoch_start(self, epoch: int) -> None:
        """Called at the start of each training epoch (for schedules)."""

    def on_train_epoch_end(self, end: EpochEnd) -> None:
        """Called at the end of each training epoch (for guards and per-epoch bookkeeping)."""

    def after_optimizer_step(self) -> None:
        """Called right after each optimizer step, before any callback sees the weights."""

    def diagnostics(self) -> dict[str, Tensor]:
        """Scalars about the last training batch, logged every `trainer.log_every_n_steps`."""
        return {}

    def forget(self, model: nn.Module) -> None:
        """Let go of a model this defense ran once and will not see again (a probe's copy)."""


class Natural(Defense):
    """Plain empirical risk minimisation: cross-entropy on clean inputs."""

    def training_loss(self, model: nn.Module, x: Tensor, y: Tensor) -> DefenseOutput:
        logits = model(x)
        return DefenseOutput(F.cross_entropy(logits, y), logits)


class InputAdversarial(Defense):
    """A defense with an inner maximisation over the input and an outer loss on its result.

    Splitting the two lets the layer-wise defense run the same steps with its hooks active:
    `forward` is the (possibly perturbed) network for adversarial inputs, and `tap` receives,
    from each inner backward pass, the gradients with respect to its own tensors.

    Args:
        eps, alpha, steps: L-inf budget, step size and number of inner PGD steps. alpha None is
            2.5 * eps / steps (Madry et al. 2018: enough to reach the ball's boundary from any
            start; eps/4 at the standard 10 steps).
        bn_mode: "train" or "eval": BatchNorm mode while the inner maximisation runs.
        awp: adversarial weight perturbation of the outer step (Wu et al. 2020), or None.
    """

    def __init__(self, eps: float, alpha: float | None, steps: int, bn_mode: str, awp: AWP | None = None) -> None:
        if bn_mode not in ("train", "eval"):
            raise ValueError(f"defense.bn_mode must be 'train' or 'eval', got {bn_mode!r}")
        self.eps = check_pixel_budget("eps", eps)
        self.steps = check_positive_int("steps", steps)
        self.alpha = check_pixel_budget("alpha", 2.5 * eps / steps if alpha is None else alpha)
        self.bn_mode = bn_mode
        self.awp = awp

    def training_loss(self, model: nn.Module, x: Tensor, y: Tensor) -> DefenseOutput:
        x_adv = self.inner_max(model, x, y, forward=model)
        return self.outer_step(model, x, x_adv, y, forward=model)

    def on_train_epoch_start(self, epoch: int) -> None:
        if self.awp is not None:
            self.awp.epoch = epoch

    def outer_step(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, forward: Forward) -> DefenseOutput:
        """`outer_loss`, at adversarially perturbed weights when AWP is on (undone by `after_optimizer_step`)."""
        if self.awp is not None:
            self.awp.perturb(model, lambda proxy: self.outer_loss(proxy, x, x_adv, y, forward=proxy).loss)
        return self.outer_loss(model, x, x_adv, y, forward)

    def after_optimizer_step(self) -> None:
        if self.awp is not None:
            self.awp.restore()

    def inner_max(
        self, model: nn.Module, x: Tensor, y: Tensor, forward: Forward, tap: GradientTap | None = None
    ) -> Tensor:
        """Adversarial inputs: PGD on `objective` from `start`, BatchNorm in `bn_mode`."""
        with self.attack_mode(model):
            objective, start = self.objective(model, x, y), self.start(x)
            return pgd_ascent(forward, x, start, objective, self.eps, self.alpha, self.steps, tap)

    @abstractmethod
    def objective(self, model: nn.Module, x: Tensor, y: Tensor) -> Objective:
        """What the inner maximisation ascends (summed over the batch)."""

    @abstractmethod
    def start(self, x: Tensor) -> Tensor:
        """Starting point of the inner maximisation."""

    @abstractmethod
    def outer_loss(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, forward: Forward) -> DefenseOutput:
        """The loss the weights minimise; adversarial logits come from `forward`."""

    @contextlib.contextmanager
    def attack_mode(self, model: nn.Module) -> Iterator[None]:
        """BatchNorm in `bn_mode` during the inner maximisation, the previous mode restored after."""
        was_training = model.training
        model.train(self.bn_mode == "train")
        try:
            yield
        finally:
            model.train(was_training)
