"""Template for evaluation attacks: eval mode, gradients on, the model's mode restored afterwards."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn

from ladlit.checks import check_pixel_budget


class Attack(ABC):
    """An L-inf evaluation attack with budget `eps` in [0, 1] pixel units."""

    def __init__(self, eps: float = 8 / 255) -> None:
        self.eps = check_pixel_budget("eps", eps)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """Adversarial examples for (x, y); the model's train/eval mode is left as it was."""
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "attacks need gradients: run them outside torch.inference_mode (Trainer(inference_mode=False))"
            )
        was_training = model.training
        model.eval()
        try:
            with torch.enable_grad():
                return self.perturb(model, x, y).detach()
        finally:
            model.train(was_training)

    @abstractmethod
    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """Return x_adv with ||x_adv - x||_inf <= eps and x_adv in [0, 1]."""

    # settings that change how fast the attack runs, not what it finds (left out of `settings`)
    SPEED_ONLY: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        """What the attack measures with: its class and every setting that changes its result,
        recorded with each evaluation so that only numbers of identical attacks are compared."""
        kept = {
            k: v
            for k, v in vars(self).items()
            if not k.startswith("_")
            and k not in self.SPEED_ONLY
            and (v is None or isinstance(v, (bool, int, float, str)))
        }
        return {"attack": type(self).__name__, **kept}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"
