"""AWP (Wu et al. 2020) against the paper's reference update, and composed with LAD."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_net

from ladlit.defenses import AWP, TRADES, LayerwiseDefense, PGDTraining

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`


# --- AWP: the paper's update, written as its reference code does it (utils_awp.py) ----------------
def _diff_in_weights(model, proxy):
    diff = OrderedDict()
    for (old_k, old_w), (_, new_w) in zip(model.state_dict().items(), proxy.state_dict().items()):
        if len(old_w.size()) <= 1:
            continue
        if "weight" in old_k:
            diff_w = new_w - old_w
            diff[old_k] = old_w.norm() / (diff_w.norm() + 1e-20) * diff_w
    return diff


def _add_into_weights(model, diff, coeff):
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in diff:
                param.add_(coeff * diff[name])


def _paper_awp_step(model, x, x_adv, y, gamma, lr, proxy_loss, outer_loss):
    """One AWP training step of the reference code: proxy SGD step (lr 0.01), perturb, descend, restore."""
    proxy = copy.deepcopy(model)
    proxy_opt = torch.optim.SGD(proxy.parameters(), lr=0.01)
    proxy.load_state_dict(model.state_dict())
    proxy.train()
    loss = -proxy_loss(proxy)
    proxy_opt.zero_grad()
    loss.backward()
    proxy_opt.step()
    diff = _diff_in_weights(model, proxy)
    _add_into_weights(model, diff, coeff=gamma)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    opt.zero_grad()
    outer_loss(model).backward()
    opt.step()
    _add_into_weights(model, diff, coeff=-gamma)


def _our_step(model, defense, x, y, lr):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    opt.zero_grad()
    torch.manual_seed(0)
    defense.training_loss(model, x, y).loss.backward()
    opt.step()
    defense.after_optimizer_step()


@pytest.mark.parametrize("base", ["pgd", "trades"])
def test_awp_step_equals_the_papers_update(base, batch):
    x, y = batch
    gamma, lr = 5e-3, 0.1
    # BatchNorm in eval mode during the attack (TRADES' default), so x' leaves the statistics alone in both runs
    defense = PGDTraining(steps=2, bn_mode="eval", awp=AWP(gamma)) if base == "pgd" else TRADES(steps=2, awp=AWP(gamma))
    model = tiny_net().train()
    torch.manual_seed(0)
    twin = copy.deepcopy(model)
    x_adv = defense.inner_max(twin, x, y, forward=twin)  # the same x' as our step will draw
    reference = copy.deepcopy(model)
    if base == "pgd":
        proxy_loss = lambda m: F.cross_entropy(m(x_adv), y)
    else:  # TRADES-AWP: the ascent uses CE(f(x), y) + beta * KL(f(x) || f(x'))

        def proxy_loss(m):
            clean, adv = m(x), m(x_adv)
            return F.cross_entropy(clean, y) + 6.0 * F.kl_div(
                F.log_softmax(adv, 1), F.softmax(clean, 1), reduction="batchmean"
            )

    _paper_awp_step(reference, x, x_adv, y, gamma, lr, proxy_loss, outer_loss=proxy_loss)
    _our_step(model, defense, x, y, lr)
    for (name, ours), theirs in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name)
    plain = tiny_net().train()
    _our_step(plain, PGDTraining(steps=2) if base == "pgd" else TRADES(steps=2), x, y, lr)
    assert not torch.allclose(plain.blocks[0].conv1.weight, model.blocks[0].conv1.weight)  # AWP changed the step


def test_awp_perturbs_weight_matrices_by_gamma_and_restores_them(batch):
    x, y = batch
    model = tiny_net().train()
    before = copy.deepcopy(model.state_dict())
    awp = AWP(gamma=0.01)
    awp.perturb(model, lambda m: F.cross_entropy(m(x), y))
    for name, w in model.named_parameters():
        moved = (w - before[name]).norm()
        if w.dim() > 1:  # convolutions and the linear layer move by gamma of their norm
            assert (moved / before[name].norm()).item() == pytest.approx(0.01, rel=1e-4), name
        else:  # BatchNorm weights and biases stay
            assert moved.item() == 0.0, name
    awp.restore()
    for name, w in model.state_dict().items():
        torch.testing.assert_close(w, before[name], rtol=0, atol=1e-7, msg=name)


def test_awp_composes_with_lad_and_waits_for_its_warmup(batch):
    x, y = batch
    lad = LayerwiseDefense(
        PGDTraining(steps=2, awp=AWP(gamma=5e-3, warmup_epochs=1)), scheme="strang_marchuk", eta=0.01
    )
    plain = LayerwiseDefense(PGDTraining(steps=2), scheme="strang_marchuk", eta=0.01)
    models = [tiny_net().train() for _ in range(3)]
    _our_step(models[0], plain, x, y, lr=0.1)
    lad.on_train_epoch_start(0)  # AWP still warming up: the step is plain LAD's
    _our_step(models[1], lad, x, y, lr=0.1)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b)
    lad.on_train_epoch_start(1)
    _our_step(models[2], lad, x, y, lr=0.1)
    assert not torch.allclose(models[0].blocks[0].conv1.weight, models[2].blocks[0].conv1.weight)
    assert not lad.base.awp._applied  # restored after the step
