"""LAD and LAD-SM read like SPEC-method.md sections 4-6."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import tiny_net
from ladlit.defenses import TRADES, LayerwiseDefense, PGDTraining
from ladlit.defenses.hooks import AdjointInjector
from ladlit.defenses.layerwise import normalize_adjoint
from ladlit.models import CifarResNet, PreActResNet, WideResNet, find_residual_blocks

BASES = {"pgd": lambda: PGDTraining(steps=3), "trades": lambda: TRADES(steps=3)}


def _step(defense, net, x, y):
    """One training step's loss and parameter gradients, from a fixed seed."""
    net.zero_grad()
    torch.manual_seed(0)
    out = defense.training_loss(net, x, y)
    out.loss.backward()
    return out.loss.detach(), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("scheme", ["lie_trotter", "strang_marchuk"])
def test_eta_zero_reproduces_the_base_step_exactly(base, scheme, batch):
    x, y = batch
    net = tiny_net().train()
    reference = _step(BASES[base](), copy.deepcopy(net), x, y)
    layerwise = _step(LayerwiseDefense(base=BASES[base](), scheme=scheme, eta=0.0), copy.deepcopy(net), x, y)
    assert torch.equal(reference[0], layerwise[0])
    assert all(torch.equal(a, b) for a, b in zip(reference[1], layerwise[1]))


def test_captured_adjoints_equal_autograd_grad(net, batch):
    x, y = batch
    net.eval()
    injector = AdjointInjector(net.residual_blocks())
    with injector.installed():
        xr = x.clone().requires_grad_(True)
        with injector.switched(capture=True, inject=False):
            loss = F.cross_entropy(net(xr), y, reduction="sum")
        torch.autograd.grad(loss, xr)
    # the same loss, hook-free, by hand: keep every block's input and output tensor
    h = net.stem(net.normalize(x.clone().requires_grad_(True)))
    inputs, outputs = [], []
    for block in net.blocks:
        inputs.append(h)
        h = block(h)
        outputs.append(h)
    loss = F.cross_entropy(net.head(h), y, reduction="sum")
    grads = torch.autograd.grad(loss, inputs + outputs)
    n = len(inputs)
    for i, state in enumerate(injector.states):
        torch.testing.assert_close(state.a["in"], grads[i], rtol=0, atol=0)
        torch.testing.assert_close(state.a["out"], grads[n + i], rtol=0, atol=0)


class ExplicitResNet(nn.Module):
    """x_{n+1} = x_n + tanh(W_n x_n), three same-shape blocks, written out by hand."""

    class Block(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.linear = nn.Linear(width, width)

        def forward(self, x):
            return x + torch.tanh(self.linear(x))

    def __init__(self, width: int = 6, depth: int = 3) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.blocks = nn.Sequential(*[self.Block(width) for _ in range(depth)])
        self.head = nn.Linear(width, 4)

    def forward(self, x):
        return self.head(self.blocks(x))

    def residual_blocks(self):
        return list(self.blocks)


@pytest.mark.parametrize("scheme", ["lie_trotter", "strang_marchuk"])
def test_perturbed_forward_matches_the_spec_formulas(scheme):
    net = ExplicitResNet()
    x, y = torch.randn(5, 6), torch.randint(0, 4, (5,))
    eta = 0.3
    defense = LayerwiseDefense(base=PGDTraining(steps=1), scheme=scheme, eta=eta, normalize="none")
    injector = defense._injector_for(net)
    with injector.installed():
        xr = x.clone().requires_grad_(True)
        forward = injector.forward(net, capture=True, inject=False)
        torch.autograd.grad(F.cross_entropy(forward(xr), y, reduction="sum"), xr)
        defense.update_perturbations()
        a_in = [s.a["in"] for s in injector.states]
        a_out = [s.a["out"] for s in injector.states]
        perturbed = injector.forward(net, capture=False, inject=True)(x)
    # the spec, by hand (section 4), with N = identity
    h = x
    for n, block in enumerate(net.blocks):
        if scheme == "lie_trotter":
            h = block(h) + eta * a_in[n]
        else:
            h = block(h + eta / 2 * a_in[n]) + eta / 2 * a_out[n]
    torch.testing.assert_close(perturbed, net.head(h))
    # between blocks: LT injects the one-block-lagged adjoint, SM the boundary's own
    assert torch.equal(a_in[1], a_out[0])


def test_transition_block_uses_its_output_adjoint_under_lie_trotter(net, batch):
    x, y = batch
    defense = LayerwiseDefense(base=PGDTraining(steps=1), eta=0.1, normalize="none")
    defense.training_loss(net.train(), x, y)
    states = defense.injector.states
    assert [s.transition for s in states] == [False, True, True]
    torch.testing.assert_close(states[1].p["out"], 0.1 * states[1].a["out"])
    torch.testing.assert_close(states[0].p["out"], 0.1 * states[0].a["in"])


@pytest.mark.parametrize("scheme", ["lie_trotter", "strang_marchuk"])
def test_small_eta_raises_the_loss(scheme, batch):
    x, y = batch
    net = tiny_net().eval()
    base = PGDTraining(steps=3, bn_mode="eval")
    torch.manual_seed(0)
    plain = base.training_loss(net, x, y).loss
    torch.manual_seed(0)
    lad = LayerwiseDefense(base=base, scheme=scheme, eta=0.05).training_loss(net, x, y).loss
    assert lad > plain


def test_lad_and_lad_sm_differ(batch):
    x, y = batch
    losses = []
    for scheme in ("lie_trotter", "strang_marchuk"):
        torch.manual_seed(0)
        losses.append(
            LayerwiseDefense(base=PGDTraining(steps=3, bn_mode="eval"), scheme=scheme, eta=0.05)
            .training_loss(tiny_net().eval(), x, y)
            .loss
        )
    assert not torch.allclose(losses[0], losses[1])


def _hook_count(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


def test_no_hooks_survive_a_step_or_an_exception(net, batch):
    x, y = batch
    reference = tiny_net()
    defense = LayerwiseDefense(base=PGDTraining(steps=2), scheme="strang_marchuk", eta=0.05)
    defense.training_loss(net.train(), x, y).loss.backward()
    assert _hook_count(net) == 0

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    defense.base.outer_loss = explode
    with pytest.raises(RuntimeError, match="boom"):
        defense.training_loss(net, x, y)
    assert _hook_count(net) == 0
    reference.load_state_dict(net.state_dict())
    net.eval(), reference.eval()
    with torch.no_grad():
        assert torch.equal(net(x), reference(x))


def test_works_on_torchvision_resnet_blocks():
    from torchvision.models import resnet18

    net = resnet18(num_classes=10)
    blocks = find_residual_blocks(net, types=["BasicBlock"])
    assert len(blocks) == 8
    x, y = torch.rand(2, 3, 32, 32), torch.randint(0, 10, (2,))
    defense = LayerwiseDefense(
        base=PGDTraining(steps=1), scheme="strang_marchuk", block_types=["BasicBlock"], eta=[0.01, 0.02, 0.03, 0.04]
    )
    out = defense.training_loss(net.train(), x, y)
    assert torch.isfinite(out.loss)
    assert len(defense.diagnostics()) == 16
    assert _hook_count(net) == 0


def test_rms_normalisation_sets_the_relative_size():
    a, z = torch.randn(4, 3, 5, 5) * 1e-3, torch.randn(4, 3, 5, 5) * 0.7
    p = normalize_adjoint(a, z, "rms")
    rms = lambda t: t.pow(2).mean((1, 2, 3)).sqrt()
    torch.testing.assert_close(rms(p), rms(z))
    assert torch.all((p * a) >= 0)  # same direction, per element


def test_eta_per_stage_and_block_selection(net, batch):
    x, y = batch
    defense = LayerwiseDefense(base=PGDTraining(steps=1), eta=[0.1, 0.2, 0.3], blocks=[0, 2], normalize="none")
    defense.training_loss(net.train(), x, y)
    assert defense.block_etas(defense.injector.states) == [0.1, 0.0, 0.3]
    assert "out" not in defense.injector.states[1].p
    with pytest.raises(ValueError, match="defense.eta has 2 values"):
        LayerwiseDefense(eta=[0.1, 0.2], blocks=[0, 1, 2]).training_loss(net, x, y)


def test_eta_warmup_is_linear():
    defense = LayerwiseDefense(eta=0.4, eta_warmup_epochs=4)
    states = AdjointInjector([nn.Identity()]).states
    defense.on_train_epoch_start(0)
    assert defense.block_etas(states) == [pytest.approx(0.1)]
    defense.on_train_epoch_start(5)
    assert defense.block_etas(states) == [pytest.approx(0.4)]


def test_detach_false_differentiates_through_the_adjoints(batch):
    x, y = batch
    grads = []
    for detach in (True, False):
        net = tiny_net().train()
        torch.manual_seed(0)
        LayerwiseDefense(base=PGDTraining(steps=2), eta=0.1, detach=detach, normalize="none").training_loss(
            net, x, y
        ).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert torch.isfinite(grads[1]).all()
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize(
    "make",
    [
        lambda: PreActResNet(num_blocks=(1, 1, 1, 1), widths=(8, 16, 32, 64)),
        lambda: WideResNet(depth=10, widen_factor=1),
        lambda: CifarResNet(depth=20, widths=(8, 16, 32)),
    ],
    ids=["preact_resnet", "wide_resnet", "cifar_resnet"],
)
@pytest.mark.parametrize("scheme", ["lie_trotter", "strang_marchuk"])
def test_every_model_family_trains_with_both_schemes(make, scheme):
    net = make().train()
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    defense = LayerwiseDefense(base=PGDTraining(steps=2), scheme=scheme, eta=0.05)
    defense.training_loss(net, x, y).loss.backward()
    n_blocks = len(net.residual_blocks())
    assert len([k for k in defense.diagnostics() if "perturbation" in k]) == n_blocks
    assert _hook_count(net) == 0


def test_warns_once_when_the_perturbation_stops_learning(tmp_path):
    from conftest import quickstart_config
    from ladlit.defenses.layerwise import LearningStalledWarning
    from ladlit.train import train

    # digits, batch 16: 72 steps per epoch, so the check (after 100 steps) runs at the end of epoch 2
    short = [
        "trainer.max_epochs=3",
        "dataset.batch_size=16",
        "train_attack_steps=1",
        "trainer.limit_val_batches=1",
        "dataset.test_subset=32",
    ]
    with pytest.warns(LearningStalledWarning, match=r"defense.eta=5.0 .*still at chance") as record:
        train(quickstart_config(tmp_path / "absurd", "defense=lad", "defense.eta=5.0", *short))
    assert sum(isinstance(w.message, LearningStalledWarning) for w in record) == 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", LearningStalledWarning)
        train(quickstart_config(tmp_path / "pgd", "defense=pgd", *short))
        train(quickstart_config(tmp_path / "lad", "defense=lad", "defense.eta=0.001", *short))
