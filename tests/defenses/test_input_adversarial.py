"""PGD-AT's and TRADES' inner maximisations and losses, checked against hand-written formulas, and
the BatchNorm mode each base attacks in."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ladlit.defenses import TRADES, Natural, PGDTraining


def test_trades_outer_loss_is_ce_plus_beta_kl(net, batch):
    x, y = batch
    x_adv = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    net.train()
    out = TRADES(beta=3.0).outer_loss(net, x, x_adv, y, forward=net)
    clean, adv = net(x), net(x_adv)
    p, log_q = F.softmax(clean, 1), F.log_softmax(adv, 1)
    kl = (p * (p.log() - log_q)).sum(1).mean()
    expected = F.cross_entropy(clean, y) + 3.0 * kl
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-6)


def test_trades_with_beta_zero_is_natural_cross_entropy(net, batch):
    x, y = batch
    net.eval()  # no BatchNorm statistics drift between the two calls
    torch.manual_seed(0)
    trades = TRADES(beta=0.0, steps=2).training_loss(net, x, y).loss
    natural = Natural().training_loss(net, x, y).loss
    torch.testing.assert_close(trades, natural)


def test_trades_inner_max_increases_kl(net, batch):
    x, y = batch
    net.eval()
    defense = TRADES(steps=5)
    x_adv = defense.inner_max(net, x, y, forward=net)
    objective = defense.objective(net, x, y)
    with torch.no_grad():
        assert objective(net(x_adv)) > objective(net(defense.start(x)))
    assert (x_adv - x).abs().max() <= defense.eps + 1e-6


def test_pgd_training_loss_is_ce_at_a_worse_point_than_clean(net, batch):
    x, y = batch
    net.eval()
    torch.manual_seed(0)
    adv = PGDTraining(steps=5, bn_mode="eval").training_loss(net, x, y)
    assert adv.loss > F.cross_entropy(net(x), y)
    torch.testing.assert_close(adv.loss, F.cross_entropy(adv.logits, y))


def test_inner_max_restores_training_mode(net, batch):
    x, y = batch
    for bn_mode in ("train", "eval"):
        net.train()
        PGDTraining(steps=1, bn_mode=bn_mode).inner_max(net, x, y, forward=net)
        assert net.training


@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_bn_mode_is_honoured_during_the_inner_maximisation(bn_mode, net, batch):
    x, y = batch
    net.train()
    before = [b.clone() for b in net.buffers()]
    PGDTraining(steps=3, bn_mode=bn_mode).inner_max(net, x, y, forward=net)
    moved = any(not torch.equal(a, b) for a, b in zip(before, net.buffers()))
    assert moved is (bn_mode == "train")  # batch statistics update the running ones only in train mode


def _linear_model():
    torch.manual_seed(0)
    weight = torch.randn(3, 12)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3, bias=False))
    model[1].weight.data = weight.clone()
    return model, weight


def _ce_ascent_by_hand(weight, x, start, y, eps, alpha, steps):
    """`steps` signed steps of alpha up the summed cross-entropy of a linear model, projected each step."""
    x_adv = start.clone()
    for _ in range(steps):
        p = torch.softmax(x_adv.flatten(1) @ weight.T, dim=1)
        grad = ((p - F.one_hot(y, 3).float()) @ weight).view_as(x)
        x_adv = torch.minimum(torch.maximum(x_adv + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv


@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_training_takes_steps_signed_steps_from_its_start(random_start):
    model, weight = _linear_model()
    x, y = torch.rand(6, 1, 3, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    eps, alpha = 0.1, 0.03
    torch.manual_seed(5)
    ours = PGDTraining(eps=eps, alpha=alpha, steps=3, random_start=random_start).inner_max(model, x, y, forward=model)
    torch.manual_seed(5)  # by hand: the same uniform draw, or x itself
    start = (x + torch.empty(x.shape).uniform_(-eps, eps)).clamp(0, 1) if random_start else x
    torch.testing.assert_close(ours, _ce_ascent_by_hand(weight, x, start, y, eps, alpha, 3), atol=1e-6, rtol=0)


def test_an_unknown_bn_mode_is_refused():
    with pytest.raises(ValueError, match="bn_mode must be 'train' or 'eval'"):
        PGDTraining(bn_mode="frozen")


def test_batchnorm_mode_during_the_attack_follows_each_reference_code():
    """PGD-AT and FGSM-RS attack with batch statistics (Rice et al.'s, Wong et al.'s code), TRADES
    and MART with running ones (their authors' code), in the classes and in their configs."""
    from helpers import compose_config
    from hydra.utils import instantiate

    from ladlit.defenses import FGSMRS, MART

    expected = {"pgd": "train", "fgsm_rs": "train", "trades": "eval", "mart": "eval"}
    classes = {"pgd": PGDTraining, "fgsm_rs": FGSMRS, "trades": TRADES, "mart": MART}
    for name, mode in expected.items():
        assert classes[name]().bn_mode == mode, name
        assert instantiate(compose_config("train", [f"defense={name}"]).defense).bn_mode == mode, name


def test_trades_inner_max_ascends_the_kl_from_a_gaussian_start():
    """The reference code's attack: x + 0.001 N(0, I) (at x itself the KL's gradient is rounding
    noise), then signed steps up KL(f(x) || f(x')), whose input gradient for a linear model is
    (softmax(W x') - softmax(W x)) W."""
    model, weight = _linear_model()
    x, y = torch.rand(6, 1, 3, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    eps, alpha = 0.1, 0.03  # two steps stay inside the ball: the start shows in the result
    torch.manual_seed(5)
    ours = TRADES(eps=eps, alpha=alpha, steps=2).inner_max(model, x, y, forward=model)
    torch.manual_seed(5)
    x_adv = (x + 0.001 * torch.randn(x.shape)).clamp(0, 1)
    p = torch.softmax(x.flatten(1) @ weight.T, dim=1)
    for _ in range(2):
        grad = ((torch.softmax(x_adv.flatten(1) @ weight.T, dim=1) - p) @ weight).view_as(x)
        x_adv = torch.minimum(torch.maximum(x_adv + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    torch.testing.assert_close(ours, x_adv, atol=1e-6, rtol=0)
