"""What makes AutoAttack faster must not change what it finds: the fast copy computes the model's
function, a break found on it counts only if it fools the model itself, and worker processes run
exactly the attacks the calling process would have run on the same examples."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import tiny_net
from torch import nn

from ladlit.attacks import AutoAttack
from ladlit.attacks.autoattack import worker_slices
from ladlit.attacks.fast_forward import attack_forward
from ladlit.attacks.worker import STATE, WorkerPool

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`


class ShortAutoAttack(AutoAttack):
    """AutoAttack's components with a handful of iterations, so a test runs in seconds (module
    level: worker processes unpickle it by name)."""

    def components(self, model, n_classes):
        parts = super().components(model, n_classes)
        for _, attack in parts:
            if hasattr(attack, "n_queries"):
                attack.n_queries = 30
            else:
                attack.steps = 3
        return parts


def net_with_batch_statistics() -> nn.Module:
    """A tiny ResNet whose BatchNorms hold non-trivial running statistics (folding them matters)."""
    net = tiny_net()
    torch.manual_seed(1)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def batch(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(n) % 10


def test_the_fast_copy_computes_the_models_logits_and_input_gradients():
    net, (x, _) = net_with_batch_statistics(), batch()
    fast = attack_forward(net)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fast.modules()) == 0  # folded away
    xg, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref, out = net(xg), fast(xf)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    (g_ref,) = torch.autograd.grad(ref[:, 3].sum(), xg)
    (g_out,) = torch.autograd.grad(out[:, 3].sum(), xf)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-4, atol=1e-6)


def test_the_model_itself_is_left_as_it_was():
    net = net_with_batch_statistics().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    attack_forward(net)
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_model_fx_cannot_trace_is_attacked_unfolded():
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net_with_batch_statistics()

        def forward(self, x):
            return self.net(x) if x.sum() > 0 else -self.net(x)

    model, (x, _) = DataDependent().eval(), batch()
    torch.testing.assert_close(attack_forward(model)(x), model(x), rtol=1e-5, atol=1e-5)


def test_a_break_found_on_the_fast_copy_counts_only_if_it_fools_the_model(monkeypatch):
    """The copy attacked here gets every example wrong, and each component hands back a random
    corner of the eps-ball as its 'adversarial' example: only those that fool the model may stay."""
    net, (x, _) = net_with_batch_statistics(), batch(32)
    with torch.no_grad():
        y = net(x).argmax(1)
    liar = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 11))
    nn.init.zeros_(liar[1].weight)
    liar[1].bias.data[10] = 10.0  # always says class 10, which no example has

    def corners(attacked, n_classes):
        assert attacked is liar
        eps = 0.3  # large enough that some corners fool the model and some do not
        return [(name, lambda xb, yb: (xb + eps * torch.randn_like(xb).sign()).clamp(0, 1)) for name in ("a", "b")]

    monkeypatch.setattr("ladlit.attacks.autoattack.attack_forward", lambda model: liar)
    monkeypatch.setattr(AutoAttack, "components", lambda self, attacked, n_classes: corners(attacked, n_classes))
    monkeypatch.setattr(AutoAttack, "names", lambda self: ["a", "b"])
    torch.manual_seed(0)
    x_adv = AutoAttack(eps=0.3)(net, x, y)
    with torch.no_grad():
        fooled = net(x_adv).argmax(1) != y
    assert 0 < fooled.sum() < len(y)
    assert torch.equal(x_adv[~fooled], x[~fooled])  # no candidate that left the model right was kept


def test_worker_slices_share_the_examples_contiguously_and_evenly():
    for n, workers in [(10, 2), (7, 2), (5, 3), (1, 2), (3, 8)]:
        parts = worker_slices(n, workers)
        covered = [i for part in parts for i in range(n)[part]]
        assert covered == list(range(n))
        sizes = [part.stop - part.start for part in parts]
        assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
        assert len(parts) == min(n, workers)


@pytest.mark.timeout(300)
def test_workers_run_what_the_calling_process_would_run_on_the_same_slices():
    net, (x, _) = net_with_batch_statistics(), batch(8)
    with torch.no_grad():
        y = net(x).argmax(1)  # every example enters the first component
    attack = ShortAutoAttack(eps=8 / 255, workers=2)
    parallel = attack(net, x, y)

    # the same stages by hand, in this process, single-threaded like a worker
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = ShortAutoAttack(eps=8 / 255)
        fast, robust, expected = attack_forward(net), torch.ones(8, dtype=torch.bool), x.clone()
        for name in serial.names():
            idx = robust.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            for part in worker_slices(len(idx), 2):
                i = idx[part]
                candidate, fooled = serial.run_component(name, net, fast, x[i], y[i], 10)
                expected[i[fooled]] = candidate[fooled]
                robust[i[fooled]] = False
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(parallel, expected)
    assert set(attack.seconds) == {"apgd-ce", "apgd-t", "fab-t", "square"}


def _remember(value):
    STATE["remembered"] = value


def _recall(suffix):
    if suffix is None:
        raise ValueError("no suffix")
    return f"{STATE['remembered']}{suffix}"


def _chatty(value):
    print("progress output from inside an attack")
    os.write(1, b"and some written by C code straight to file descriptor 1\n")
    return value


def test_a_worker_keeps_its_state_and_reports_its_errors():
    with WorkerPool(2) as pool:
        pool.map(_remember, [("a",), ("b",)])
        assert pool.map(_recall, [("1",), ("2",)]) == ["a1", "b2"]
        assert pool.map(_chatty, [(41,), (42,)]) == [41, 42]  # output goes to stderr, not into the answers
        with pytest.raises(RuntimeError, match="no suffix"):
            pool.map(_recall, [(None,)])


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_a_worker_count_that_is_not_a_whole_number_from_1_is_refused(workers):
    with pytest.raises(ValueError, match="workers"):
        AutoAttack(workers=workers)
