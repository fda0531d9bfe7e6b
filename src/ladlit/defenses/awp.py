"""Adversarial weight perturbation (AWP; Wu et al., "Adversarial Weight Perturbation Helps Robust
Generalization", NeurIPS 2020).

Before the weight update, every weight matrix w_l (convolutions, linear layers; not BatchNorm or
biases) is pushed uphill on the training loss by a step of relative size gamma:

    v_l = gamma * ||w_l|| * g_l / ||g_l||,   g = d loss / d w  (one ascent step, layer-wise normalised)

the descent step is taken at w + v, and v is subtracted again after it. The gradient g is taken
on a proxy copy in train mode, so the model's BatchNorm statistics see one forward per step as
without AWP. (The paper's code takes one SGD step of the proxy and normalises the difference of
weights; with no momentum or weight decay on the proxy that difference is lr * g, and lr cancels.)
The loss is the base defense's own outer loss at the adversarial input, so TRADES-AWP ascends
CE(f(x), y) + beta * KL(f(x) || f(x')), as in the paper.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ladlit.checks import check_non_negative


class AWP:
    """Adversarial weight perturbation of relative size `gamma`, from epoch `warmup_epochs` on."""

    def __init__(self, gamma: float = 5e-3, warmup_epochs: int = 0) -> None:
        self.gamma = check_non_negative("gamma", gamma)
        self.warmup_epochs = warmup_epochs
        self.epoch = 0
        self._proxy: nn.Module | None = None
        self._applied: list[tuple[Tensor, Tensor]] = []

    def perturb(self, model: nn.Module, loss_of: Callable[[nn.Module], Tensor]) -> None:
        """Add v to `model`'s weight matrices, with `loss_of(proxy)` the loss to ascend."""
        if self.epoch < self.warmup_epochs or self.gamma == 0:
            return
        proxy = self._proxy_of(model)
        proxy.load_state_dict(model.state_dict())
        proxy.train()
        names = [n for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
        proxy_params = dict(proxy.named_parameters())
        grads = torch.autograd.grad(loss_of(proxy), [proxy_params[n] for n in names], allow_unused=True)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, grad in zip(names, grads):
                if grad is None:
                    continue
                w = params[name]
                v = self.gamma * w.norm() * grad / (grad.norm() + 1e-20)
                w.add_(v)
                self._applied.append((w, v))

    def restore(self) -> None:
        """Subtract what `perturb` added (after the optimizer step)."""
        with torch.no_grad():
            for w, v in self._applied:
                w.sub_(v)
        self._applied.clear()

    def _proxy_of(self, model: nn.Module) -> nn.Module:
        """A hook-free copy of `model`, made once, that receives its weights at every step."""
        if self._proxy is None or type(self._proxy) is not type(model):
            self._proxy = copy.deepcopy(model)
            for module in self._proxy.modules():  # the layer-wise defense's hooks stay on the model
                module._forward_hooks.clear()
                module._forward_pre_hooks.clear()
        return self._proxy

    def __repr__(self) -> str:
        return f"AWP(gamma={self.gamma}, warmup_epochs={self.warmup_epochs})"
