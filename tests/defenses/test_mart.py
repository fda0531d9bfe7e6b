"""MART (Wang et al. 2020): the loss against the paper's formula."""

from __future__ import annotations

import torch

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
