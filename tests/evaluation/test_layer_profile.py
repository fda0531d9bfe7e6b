"""The layer-wise robustness profile: r = 0 is clean accuracy, larger pushes along the adjoint
hurt more, only the named block is touched, and `ladlit.eval layer_profile=true` records it."""

from __future__ import annotations

import torch

from ladlit.attacks import correct
from ladlit.evaluation.layer_profile import layer_profile


def _batches(x, y, size=32):
    return list(zip(x.split(size), y.split(size)))


def test_r_zero_is_clean_accuracy_and_accuracy_falls_with_r(trained_digits_net):
    net, x, y = trained_digits_net
    sizes = (0.0, 0.05, 0.2, 0.5, 1.0)
    profile = layer_profile(net, _batches(x, y), torch.device("cpu"), sizes)
    clean = correct(net, x, y).float().mean().item()
    assert list(profile) == ["block00", "block01", "block02"]
    for block, accs in profile.items():
        values = [accs[str(r)] for r in sizes]
        assert values[0] == clean, block
        assert all(b <= a + 1.0 / len(y) for a, b in zip(values, values[1:])), (block, values)  # one example of slack
        assert values[-1] < clean - 0.2, (block, values)  # a push of the state's own size along the adjoint breaks it


def test_profile_pushes_uphill_and_leaves_the_model_unhooked(trained_digits_net):
    net, x, y = trained_digits_net
    before = net(x).detach()
    uphill = layer_profile(net, _batches(x, y), torch.device("cpu"), (0.5,))["block01"]["0.5"]
    assert torch.equal(net(x).detach(), before)  # hooks removed, nothing left injected
    assert not net.blocks[1]._forward_hooks and not net.blocks[1]._forward_pre_hooks
    # a random direction of the same relative size hurts far less than the adjoint direction
    torch.manual_seed(0)
    h = net.blocks[:2](net.stem(net.normalize(x)))
    noise = torch.randn_like(h)
    noise *= h.pow(2).mean((1, 2, 3), keepdim=True).sqrt() / noise.pow(2).mean((1, 2, 3), keepdim=True).sqrt()
    with torch.no_grad():
        random_acc = (net.head(net.blocks[2:](h + 0.5 * noise)).argmax(1) == y).float().mean().item()
    assert uphill < random_acc - 0.1


def test_ladlit_eval_records_and_renders_it(quickstart_run):
    from helpers import compose_config

    from ladlit.eval import evaluate_checkpoint

    cfg = compose_config(
        "eval",
        [
            f"ckpt={quickstart_run}",
            "attack=[]",
            "n_examples=16",
            "sanity_examples=0",
            "eps_sweep=[]",
            "layer_profile=true",
            "layer_profile_sizes=[0.0,0.5]",
        ],
    )
    entries = evaluate_checkpoint(cfg)
    (entry,) = [e for k, e in entries.items() if "| layer_profile |" in k]
    assert entry["n_examples"] == 16 and set(entry["layer_profile"]["block00"]) == {"0.0", "0.5"}
    assert "## Layer profile" in (quickstart_run / "checkpoints" / "metrics.md").read_text()
