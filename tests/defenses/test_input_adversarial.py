"""PGD-AT and TRADES losses, checked against hand-written formulas."""

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
