"""The gradient-masking checklist: every check passes on a normally trained net and fails on a
net built to mask gradients in the way that check is meant to catch."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from ladlit.evaluation import format_checklist, gradient_masking_checklist

EPS = 0.1


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies each sample's input gradient by `factor`."""

    @staticmethod
    def forward(ctx, x: Tensor, factor: Tensor) -> Tensor:
        ctx.save_for_backward(factor)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (factor,) = ctx.saved_tensors
        return grad * factor.view(-1, *[1] * (grad.dim() - 1)), None


class MaskedGradient(nn.Module):
    """`net` with its input gradient scaled per sample by `rule(x) in {1, 0, -1}`."""

    def __init__(self, net: nn.Module, rule) -> None:
        super().__init__()
        self.net, self.rule = net, rule

    def forward(self, x: Tensor) -> Tensor:
        if not torch.is_grad_enabled():
            self.rule.reset()
            return self.net(x)
        return self.net(_ScaleGrad.apply(x, self.rule(x)))


class Rule:
    def reset(self) -> None:
        pass


class ZeroGradient(Rule):  # shattered/obfuscated gradients, e.g. a non-differentiable preprocessing
    def __call__(self, x):
        return torch.zeros(len(x))


class GradientOnlyOnPixelGrid(
    Rule
):  # informative at clean (uint8) inputs only: FGSM works, PGD's random start does not
    def __call__(self, x):
        off = (x * 255 - (x * 255).round()).abs().flatten(1).amax(1)
        return (off < 1e-3).float()


class ReversesAfterCalls(Rule):  # long attacks are walked back: more steps, higher accuracy
    def __init__(self, calls: int = 25) -> None:
        self.calls, self.seen = calls, 0

    def reset(self) -> None:
        self.seen = 0

    def __call__(self, x):
        self.seen += 1
        return torch.full((len(x),), -1.0 if self.seen > self.calls else 1.0)


class ReversesFarFrom(Rule):  # large perturbations are steered back: accuracy rises with eps
    def __init__(self, x0: Tensor, radius: float) -> None:
        self.x0, self.radius = x0, radius

    def __call__(self, x):
        if x.shape != self.x0.shape:  # a black-box attack's subset: gradients unused
            return torch.ones(len(x))
        far = (x - self.x0).abs().flatten(1).amax(1) > self.radius
        return torch.where(far, -1.0, 1.0)


class Noisy(nn.Module):  # randomised in eval mode
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) + 3.0 * torch.randn(len(x), 10)


@pytest.fixture(scope="module")
def digits(trained_digits_net):
    net, x, y = trained_digits_net
    return net, x[:64], y[:64]


FAST = {"square_queries": 200, "long_steps": 50, "restarts": 3}  # the defaults (1000, 100, 5) cost 3x more


def _checks(model, x, y):
    return {c.name.split(" (")[0]: c for c in gradient_masking_checklist(model, x, y, eps=EPS, **FAST)}


def test_all_checks_pass_on_a_normally_trained_net(digits):
    net, x, y = digits
    checks = gradient_masking_checklist(net, x, y, eps=EPS, **FAST)
    assert all(c.passed for c in checks), format_checklist(checks)
    assert len(checks) == 7


@pytest.mark.parametrize(
    "masking,failing",
    [
        ("noisy", ["eps=0 equals clean accuracy", "deterministic in eval mode"]),
        ("zero_gradient", ["large eps", "black-box no stronger than white-box"]),
        ("pixel_grid", ["iterative no weaker than single-step"]),
        ("reverses_after_calls", ["more steps / restarts never raise accuracy"]),
        ("reverses_far", ["accuracy non-increasing in eps"]),
    ],
)
def test_each_check_fails_on_a_gradient_masking_net(masking, failing, digits):
    net, x, y = digits
    model = {
        "noisy": lambda: Noisy(net),
        "zero_gradient": lambda: MaskedGradient(net, ZeroGradient()),
        "pixel_grid": lambda: MaskedGradient(net, GradientOnlyOnPixelGrid()),
        "reverses_after_calls": lambda: MaskedGradient(net, ReversesAfterCalls()),
        "reverses_far": lambda: MaskedGradient(net, ReversesFarFrom(x, radius=0.15)),
    }[masking]()
    checks = _checks(model, x, y)
    for name in failing:
        assert not checks[name].passed, format_checklist(list(checks.values()))
