"""Evaluation attacks: threat model, strength, and no side effects on the model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ladlit.attacks import FGSM, PGD
from ladlit.attacks.core import margin_sum

ATTACKS = {
    "fgsm": lambda eps: FGSM(eps=eps),
    "pgd": lambda eps: PGD(eps=eps, steps=10, restarts=2),
    "cw": lambda eps: PGD(eps=eps, steps=10, loss="margin"),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_output_stays_in_eps_ball_and_unit_box(name, net, batch):
    x, y = batch
    eps = 8 / 255
    x_adv = ATTACKS[name](eps)(net, x, y)
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


@pytest.mark.parametrize("name", ["pgd", "cw"])
def test_attack_raises_its_loss(name, net, batch):
    x, y = batch
    net.eval()
    loss = (lambda z: F.cross_entropy(z, y, reduction="sum")) if name == "pgd" else margin_sum(y)
    x_adv = ATTACKS[name](8 / 255)(net, x, y)
    with torch.no_grad():
        assert loss(net(x_adv)) > loss(net(x))


def test_eps_zero_gives_clean_accuracy(net, batch):
    x, y = batch
    x_adv = PGD(eps=0.0, steps=5)(net, x, y)
    assert torch.equal(x_adv, x)


def test_model_mode_and_parameter_gradients_untouched(net, batch):
    x, y = batch
    net.train()
    F.cross_entropy(net(x), y).backward()
    grads = [p.grad.clone() for p in net.parameters()]
    for make in ATTACKS.values():
        make(8 / 255)(net, x, y)
        assert net.training
        assert all(torch.equal(g, p.grad) for g, p in zip(grads, net.parameters()))
    net.eval()
    PGD(steps=2)(net, x, y)
    assert not net.training


def test_rejects_out_of_range_budget():
    with pytest.raises(ValueError, match="eps must be in \\[0, 1\\]"):
        PGD(eps=2.0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        PGD(steps=0)


def test_accuracy_non_increasing_in_eps(trained_digits_net):
    net, x, y = trained_digits_net
    accs = []
    for eps in (0.0, 0.05, 0.1, 0.2, 0.3):
        torch.manual_seed(0)
        x_adv = PGD(eps=eps, steps=20)(net, x, y)
        with torch.no_grad():
            accs.append((net(x_adv).argmax(1) == y).float().mean().item())
    with torch.no_grad():
        clean = (net(x).argmax(1) == y).float().mean().item()
    assert accs[0] == clean
    assert all(a >= b for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < clean - 0.3, accs  # a trained net, and the attack bites


def test_autoattack_is_at_least_as_strong_as_pgd_fgsm_and_clean(trained_digits_net):
    from ladlit.attacks import AutoAttack

    net, x, y = trained_digits_net
    x, y = x[:100], y[:100]

    def accuracy(attack):
        torch.manual_seed(0)
        x_adv = x if attack is None else attack(net, x, y)
        with torch.no_grad():
            return (net(x_adv).argmax(1) == y).float().mean().item()

    eps = 0.1
    auto, pgd, fgsm, clean = (accuracy(a) for a in (AutoAttack(eps=eps), PGD(eps=eps, steps=20), FGSM(eps=eps), None))
    assert auto <= pgd <= clean and auto <= fgsm <= clean, (auto, pgd, fgsm, clean)
    assert auto < clean
