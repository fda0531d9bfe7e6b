"""Every formula that decides a number, pinned against a hand computation on fixed inputs: the
shared PGD ascent (step direction, size, projection), the random starts' distributions, the
default step sizes, TRADES' inner objective, the learning-rate schedules and the weight EMA.
(The losses of TRADES, MART, AWP and the layer-wise defense are pinned beside their code's other
tests: test_defenses, test_bases, test_layerwise; the report's statistics in test_report.) Last,
the attacks' strength order on a trained model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ladlit.attacks import FGSM, PGD, AutoAttack
from ladlit.attacks.core import gaussian_start, pgd_ascent, uniform_start
from ladlit.callbacks import EMA
from ladlit.defenses import TRADES, PGDTraining
from ladlit.errors import ConfigError
from ladlit.schedules import cosine, piecewise

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`

EPS = 0.1


def linear_model(seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    weight = torch.randn(3, 12)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, bias=False))
    model[1].weight.data = weight.clone()
    return model, weight


def ce_input_gradient(weight: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d/dx of sum_i CE(W x_i, y_i) for a linear model: (softmax(W x) - onehot(y)) W."""
    p = torch.softmax(x.flatten(1) @ weight.T, dim=1)
    return ((p - F.one_hot(y, weight.shape[0]).float()) @ weight).view_as(x)


def clip(v: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.minimum(torch.maximum(v, x - eps), x + eps).clamp(0, 1)


def test_pgd_ascent_steps_up_the_gradient_sign_by_alpha_and_projects_each_step():
    model, weight = linear_model()
    x, y = torch.rand(4, 1, 3, 4), torch.tensor([0, 1, 2, 1])
    ce = lambda logits: F.cross_entropy(logits, y, reduction="sum")
    ours = pgd_ascent(model, x, x, ce, EPS, alpha=0.03, steps=5)
    by_hand = x.clone()
    for _ in range(5):
        by_hand = clip(by_hand + 0.03 * ce_input_gradient(weight, by_hand, y).sign(), x, EPS)
    torch.testing.assert_close(ours, by_hand, atol=1e-6, rtol=0)
    assert (ours - x).abs().max() <= EPS + 1e-6 and 0 <= ours.min() and ours.max() <= 1


def test_uniform_start_is_uniform_on_the_whole_eps_ball():
    torch.manual_seed(0)
    x = torch.full((200_000,), 0.5)  # far from 0 and 1: nothing clipped
    noise = uniform_start(x, EPS) - x
    # U(-eps, eps): mean 0, standard deviation eps / sqrt(3), fills both ends of the interval
    assert noise.abs().max() <= EPS + 1e-7
    assert abs(noise.mean().item()) < 0.01 * EPS
    assert noise.std().item() == pytest.approx(EPS / math.sqrt(3), rel=0.01)
    assert noise.min() < -0.99 * EPS and noise.max() > 0.99 * EPS
    assert (noise.abs() < EPS / 2).float().mean().item() == pytest.approx(0.5, abs=0.01)  # flat, not bell-shaped


def test_gaussian_start_is_x_plus_a_thousandth_standard_normal():
    torch.manual_seed(0)
    x = torch.full((200_000,), 0.5)
    noise = gaussian_start(x) - x
    assert abs(noise.mean().item()) < 1e-5 and noise.std().item() == pytest.approx(0.001, rel=0.01)


@pytest.mark.parametrize(
    ("make", "alpha", "steps", "random_start"),
    [
        (lambda: PGD(eps=EPS), EPS / 4, 20, True),  # evaluation PGD: eps/4 (2/255 at 8/255)
        (lambda: FGSM(eps=EPS), EPS, 1, False),  # FGSM: one step of eps from x
        (lambda: PGDTraining(eps=EPS, steps=4), 2.5 * EPS / 4, 4, True),  # Madry et al.: 2.5 eps / steps
        (lambda: TRADES(eps=EPS, steps=5), 2.5 * EPS / 5, 5, None),
    ],
)
def test_default_step_sizes(make, alpha, steps, random_start):
    attack = make()
    assert attack.alpha == pytest.approx(alpha) and attack.steps == steps
    if random_start is not None:
        assert attack.random_start is random_start


def test_fgsm_is_exactly_one_signed_step_of_eps_from_the_clean_input():
    model, weight = linear_model(1)
    x, y = torch.rand(6, 1, 3, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    by_hand = clip(x + EPS * ce_input_gradient(weight, x, y).sign(), x, EPS)
    torch.testing.assert_close(FGSM(eps=EPS)(model, x, y), by_hand, atol=1e-6, rtol=0)


def test_trades_inner_objective_is_the_summed_kl_from_the_clean_prediction():
    model, weight = linear_model(2)
    x, y = torch.rand(5, 1, 3, 4), torch.tensor([0, 1, 2, 0, 1])
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    objective = TRADES().objective(model, x, y)
    p = torch.softmax(x.flatten(1) @ weight.T, dim=1)
    log_q = torch.log_softmax(x_adv.flatten(1) @ weight.T, dim=1)
    by_hand = (p * (p.log() - log_q)).sum()
    torch.testing.assert_close(objective(model(x_adv)), by_hand, rtol=1e-5, atol=1e-6)


def lrs(schedule, max_epochs: int, lr: float = 0.1) -> list[float]:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler, out = schedule(optimizer, max_epochs=max_epochs), []
    for _ in range(max_epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_piecewise_decay_divides_by_ten_at_half_and_three_quarters_of_training():
    assert lrs(piecewise, 8) == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    assert lrs(piecewise, 10) == pytest.approx([0.1] * 5 + [0.01] * 3 + [0.001] * 2)  # round(7.5) = 8


def test_cosine_anneals_to_zero_over_the_run():
    by_hand = [0.05 * (1 + math.cos(math.pi * e / 10)) for e in range(10)]
    assert lrs(cosine, 10) == pytest.approx(by_hand)


def test_a_warm_up_ramps_the_lr_linearly_from_its_start_then_the_schedule_runs_over_the_epochs_left():
    from functools import partial

    ramp = [0.01, 0.04, 0.07]  # 0.1 x (0.1 + 0.9 e / 3), e = 0, 1, 2
    by_hand = [0.05 * (1 + math.cos(math.pi * e / 7)) for e in range(7)]
    assert lrs(partial(cosine, warmup_epochs=3, warmup_start=0.1), 10) == pytest.approx(ramp + by_hand)
    # piecewise: the milestones are fractions of the 8 epochs after a 2-epoch warm-up
    assert lrs(partial(piecewise, warmup_epochs=2), 10) == pytest.approx(
        [0.01, 0.055] + [0.1] * 4 + [0.01] * 2 + [0.001] * 2
    )
    assert lrs(partial(cosine, warmup_epochs=0), 10) == lrs(cosine, 10)


@pytest.mark.parametrize(
    "bad", [{"warmup_epochs": 10}, {"warmup_epochs": -1}, {"warmup_epochs": 2, "warmup_start": 0.0}]
)
def test_a_warm_up_that_leaves_no_schedule_or_starts_nowhere_is_refused(bad):
    from functools import partial

    with pytest.raises(ConfigError, match="warmup"):
        lrs(partial(cosine, **bad), 10)


def test_ema_average_and_its_warm_up_by_hand():
    ema = EMA(decay=0.9, warmup=True)
    averaged, current = torch.tensor(1.0), torch.tensor(3.0)
    # t updates so far: decay_t = min(0.9, (1 + t) / (10 + t)); t = 0 -> 0.1, t = 100 -> 0.9
    for t, decay in ((0, 0.1), (20, 21 / 30), (100, 0.9)):
        expected = decay * 1.0 + (1 - decay) * 3.0
        assert ema.average(averaged, current, torch.tensor(t)).item() == pytest.approx(expected)
    constant = EMA(decay=0.9, warmup=False)
    assert constant.average(averaged, current, torch.tensor(0)).item() == pytest.approx(0.9 * 1.0 + 0.1 * 3.0)


def test_strength_order_on_a_trained_model(trained_digits_net):
    """FGSM >= PGD-20 >= PGD-20 with restarts (per example, the restarts only add), in accuracy,
    on a normally trained quickstart-sized model (AutoAttack <= PGD-20 and FGSM: test_attacks)."""
    net, x, y = trained_digits_net
    x, y = x[:60], y[:60]

    def hits(attack):
        torch.manual_seed(0)
        with torch.no_grad():
            return net(attack(net, x, y)).argmax(1) == y

    fgsm, pgd, restarts = hits(FGSM(eps=EPS)), hits(PGD(eps=EPS, steps=20)), hits(PGD(eps=EPS, steps=20, restarts=3))
    assert fgsm.float().mean() >= pgd.float().mean() >= restarts.float().mean()
    assert not (restarts & ~pgd).any()  # the first restart is PGD-20 itself: restarts never un-break an example


def test_autoattack_runs_the_reference_configuration():
    """Standard AutoAttack as fra31/auto-attack runs it: APGD-CE, APGD-T, FAB-T at 100 iterations
    and one restart, 9 target classes, Square with 5,000 queries, p_init 0.8, no rescaled schedule."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 10))
    parts = dict(AutoAttack(eps=EPS).components(net, n_classes=10))
    assert list(parts) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert parts["apgd-ce"].steps == parts["apgd-t"].steps == parts["fab-t"].steps == 100
    assert parts["apgd-ce"].n_restarts == parts["apgd-t"].n_restarts == parts["fab-t"].n_restarts == 1
    assert parts["apgd-ce"].loss == "ce" and parts["fab-t"].multi_targeted
    assert parts["apgd-t"].n_target_classes == parts["fab-t"].n_target_classes == 9
    square = parts["square"]
    assert (square.n_queries, square.p_init, square.rescale_schedule, square.n_restarts) == (5000, 0.8, False, 1)
    assert all(p.eps == EPS and p.seed == 0 for p in parts.values())
