"""MART (Wang et al. 2020): the loss against the paper's formula, the inner maximisation against
the reference code's (cross-entropy, Gaussian start, BatchNorm on running statistics)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ladlit.defenses import MART


# --- MART ---------------------------------------------------------------------------------------------
def test_mart_loss_is_the_papers_formula_on_fixed_logits():
    clean = torch.tensor([[2.0, 1.0, 0.0], [0.5, 0.2, 3.0]])
    adv = torch.tensor([[1.0, 1.5, 0.0], [0.0, 2.0, 1.0]])
    y = torch.tensor([0, 2])
    p_adv, p_clean = adv.softmax(1), clean.softmax(1)
    bce = []
    for i in range(2):
        wrong = max(p_adv[i, k] for k in range(3) if k != y[i])
        bce.append(-torch.log(p_adv[i, y[i]]) - torch.log(1 - wrong))
    kl = [(p_clean[i] * (p_clean[i].log() - p_adv[i].log())).sum() * (1 - p_clean[i, y[i]]) for i in range(2)]
    expected = torch.stack(bce).mean() + 6.0 * torch.stack(kl).mean()
    net = lambda x: clean
    out = MART(beta=6.0).outer_loss(net, None, None, y, forward=lambda x: adv)
    torch.testing.assert_close(out.loss, expected, rtol=1e-4, atol=1e-5)


def test_mart_inner_max_is_pgd_on_the_cross_entropy_from_a_gaussian_start():
    """The reference code's attack: x + 0.001 N(0, I), then signed steps up the cross-entropy."""
    torch.manual_seed(0)
    weight = torch.randn(3, 12)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3, bias=False))
    model[1].weight.data = weight.clone()
    x, y = torch.rand(6, 1, 3, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    eps, alpha = 0.1, 0.03  # two steps stay inside the ball: the start shows in the result
    torch.manual_seed(5)
    ours = MART(eps=eps, alpha=alpha, steps=2).inner_max(model, x, y, forward=model)
    torch.manual_seed(5)
    x_adv = (x + 0.001 * torch.randn(x.shape)).clamp(0, 1)
    for _ in range(2):
        p = torch.softmax(x_adv.flatten(1) @ weight.T, dim=1)
        grad = ((p - F.one_hot(y, 3).float()) @ weight).view_as(x)
        x_adv = torch.minimum(torch.maximum(x_adv + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    torch.testing.assert_close(ours, x_adv, atol=1e-6, rtol=0)


def test_mart_attacks_with_the_running_statistics(net, batch):
    net.train()
    before = [b.clone() for b in net.buffers()]
    MART(steps=2).inner_max(net, *batch, forward=net)
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers())) and net.training
