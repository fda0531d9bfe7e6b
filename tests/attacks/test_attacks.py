"""Evaluation attacks: threat model, strength, and no side effects on the model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ladlit.attacks import APGDCE, FGSM, PGD, AutoAttack, Square
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


PROJECTED = {
    "fgsm": lambda eps: FGSM(eps=eps),
    "pgd": lambda eps: PGD(eps=eps, alpha=0.5, steps=3, restarts=2),  # steps far larger than eps
    "cw": lambda eps: PGD(eps=eps, alpha=0.5, steps=3, loss="margin"),
    "apgd-ce": lambda eps: APGDCE(eps=eps, steps=5),
    "square": lambda eps: Square(eps=eps, n_queries=20),
    "autoattack": lambda eps: AutoAttack(eps=eps),
}


KEEP_CLEAN_UNLESS_FOOLED = {"apgd-ce", "autoattack"}  # return x itself wherever they fail to fool


@pytest.mark.parametrize("name", PROJECTED)
def test_every_attack_ends_inside_the_eps_ball_and_the_unit_box(name, trained_digits_net):
    """Projected onto both sets, and not by shrinking: the gradient attacks move every input they
    return changed to the ball's faces. APGD and AutoAttack return an input changed only where they
    fool the net, so eps (0.1 of the digits' [0, 1] range) is large enough that some are fooled: at
    0.03 a net trained on an AVX2-only CPU was fooled on none and there was nothing to check."""
    net, x, y = trained_digits_net
    x, y = x[:24].clone(), y[:24]
    x[:, :, :1] = 0.0  # pixels at the box's edges, where an unclamped step leaves [0, 1]
    x[:, :, -1:] = 1.0
    eps = 0.1
    torch.manual_seed(0)
    x_adv = PROJECTED[name](eps)(net, x, y)
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    if name == "square":  # random search: may stop inside the ball
        return
    at_face = (x_adv - x).flatten(1).abs().amax(1) >= eps - 1e-6
    if name in KEEP_CLEAN_UNLESS_FOOLED:
        with torch.no_grad():
            fooled = (net(x).argmax(1) == y) & (net(x_adv).argmax(1) != y)
        assert fooled.any(), "precondition: the attack fools some input"
        assert torch.equal((x_adv != x).flatten(1).any(1), fooled)
        assert at_face[fooled].all()
    else:
        assert at_face.all()


def test_cw_objective_is_the_carlini_wagner_margin_on_fixed_logits():
    logits = torch.tensor([[3.0, 1.0, -2.0], [0.5, 2.5, 1.0], [1.0, 1.0, 4.0]])
    y = torch.tensor([0, 0, 2])
    by_hand = sum(max(z[j] for j in range(3) if j != t) - z[t] for z, t in zip(logits.tolist(), y.tolist()))
    assert margin_sum(y)(logits).item() == pytest.approx(by_hand)  # (1 - 3) + (2.5 - 0.5) + (1 - 4) = -3
    assert by_hand == pytest.approx(-3.0)


def test_cw_lowers_accuracy_on_a_trained_net(trained_digits_net):
    net, x, y = trained_digits_net
    torch.manual_seed(0)
    x_adv = PGD(eps=0.1, steps=20, loss="margin")(net, x, y)
    with torch.no_grad():
        clean, attacked = ((net(v).argmax(1) == y).float().mean().item() for v in (x, x_adv))
    assert attacked < clean - 0.2, (clean, attacked)


def test_restarts_keep_per_example_the_first_restart_that_fools(monkeypatch):
    """Three restarts whose ends are tagged by a pixel value; example i is fooled from restart
    fooled_from[i] on (never: 9). Each keeps the first fooling end, or the last tried."""
    import ladlit.attacks.pgd as pgd_module

    fooled_from = torch.tensor([0, 1, 2, 9])
    calls = iter(range(3))
    monkeypatch.setattr(pgd_module, "pgd_ascent", lambda *args, **kwargs: torch.full((4, 1, 1, 1), float(next(calls))))

    class Tagged(torch.nn.Module):  # wrong (class 1) once the tag reaches the example's threshold
        def forward(self, x):
            wrong = x.flatten(1)[:, 0] >= fooled_from
            return torch.stack([(~wrong).float(), wrong.float()], 1)

    x_adv = PGD(eps=1.0, steps=1, restarts=3)(Tagged(), torch.zeros(4, 1, 1, 1), torch.zeros(4, dtype=torch.long))
    assert x_adv.flatten().tolist() == [0.0, 1.0, 2.0, 2.0]


def test_attacks_run_batchnorm_in_eval_mode(net, batch):
    x, y = batch
    net.train()
    before = [b.clone() for b in net.buffers()]
    for make in PROJECTED.values():
        if make is not PROJECTED["autoattack"]:
            make(8 / 255)(net, x, y)
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))  # no running statistic moved
    assert net.training


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
    x, y = x[:60], y[:60]

    def accuracy(attack):
        torch.manual_seed(0)
        x_adv = x if attack is None else attack(net, x, y)
        with torch.no_grad():
            return (net(x_adv).argmax(1) == y).float().mean().item()

    eps = 0.1
    auto, pgd, fgsm, clean = (accuracy(a) for a in (AutoAttack(eps=eps), PGD(eps=eps, steps=20), FGSM(eps=eps), None))
    assert auto <= pgd <= clean and auto <= fgsm <= clean, (auto, pgd, fgsm, clean)
    assert auto < clean
