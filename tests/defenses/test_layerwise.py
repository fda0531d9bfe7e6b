"""LAD and LAD-SM read like docs/method.md, sections 4-7."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_net
from torch import nn

from ladlit.defenses import TRADES, EpochEnd, LayerwiseDefense, PGDTraining
from ladlit.defenses.hooks import AdjointInjector
from ladlit.defenses.layerwise import normalize_adjoint
from ladlit.models import CifarResNet, PreActResNet, WideResNet, find_residual_blocks

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`

BASES = {"pgd": lambda: PGDTraining(steps=3), "trades": lambda: TRADES(steps=3)}


def _step(defense, net, x, y):
    """One training step's loss, parameter gradients and BatchNorm statistics, from a fixed seed."""
    net.zero_grad()
    torch.manual_seed(0)
    out = defense.training_loss(net, x, y)
    out.loss.backward()
    return out.loss.detach(), [p.grad.clone() for p in net.parameters()], [b.clone() for b in net.buffers()]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("scheme", ["lie_trotter", "strang_marchuk"])
def test_eta_zero_reproduces_the_base_step_exactly(base, scheme, batch):
    x, y = batch
    net = tiny_net().train()
    reference = _step(BASES[base](), copy.deepcopy(net), x, y)
    layerwise = _step(LayerwiseDefense(base=BASES[base](), scheme=scheme, eta=0.0), copy.deepcopy(net), x, y)
    assert torch.equal(reference[0], layerwise[0])
    assert all(torch.equal(a, b) for a, b in zip(reference[1], layerwise[1]))
    # the defense's shape-finding pass (eval mode, hooks.py) leaves the running statistics alone
    assert all(torch.equal(a, b) for a, b in zip(reference[2], layerwise[2]))


def test_captured_adjoints_equal_autograd_grad(net, batch):
    x, y = batch
    net.eval()
    injector = AdjointInjector(net.residual_blocks())
    loss = F.cross_entropy(injector.forward(net, capture=True, inject=False)(x), y, reduction="sum")
    injector.receive(torch.autograd.grad(loss, injector.leaves()))
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
    forward = injector.forward(net, capture=True, inject=False)
    defense.receive(torch.autograd.grad(F.cross_entropy(forward(x), y, reduction="sum"), defense.leaves()))
    a_in = [s.a["in"] for s in injector.states]
    a_out = [s.a["out"] for s in injector.states]
    perturbed = injector.forward(net, capture=False, inject=True)(x)
    # docs/method.md section 4 by hand, with N = identity
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


def test_hooks_are_inert_outside_the_defenses_passes_even_after_an_exception(net, batch):
    """The hooks stay on the model (so that a compiled model keeps them), and outside the passes
    the defense runs, validation and evaluation see the plain network."""
    x, y = batch
    reference = tiny_net()
    defense = LayerwiseDefense(base=PGDTraining(steps=2), scheme="strang_marchuk", eta=0.05)
    defense.training_loss(net.train(), x, y).loss.backward()
    assert defense.injector.blocks[0]._forward_pre_hooks and not defense.injector.active

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    net.blocks[1].forward = explode  # fails inside a pass, between two hooks
    with pytest.raises(RuntimeError, match="boom"):
        defense.training_loss(net, x, y)
    del net.blocks[1].forward
    assert not defense.injector.active
    reference.load_state_dict(net.state_dict())
    net.eval(), reference.eval()
    with torch.no_grad():
        assert torch.equal(net(x), reference(x))


def test_works_on_torchvision_resnet_blocks():
    """Smoke test on a foreign model (torchvision's ResNet-18), with the per-stage etas checked."""
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
    assert defense.block_etas(defense.injector.states) == [0.01, 0.01, 0.02, 0.02, 0.03, 0.03, 0.04, 0.04]


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
    """Smoke test per backbone; checks every block got a perturbation of its state's shape."""
    net = make().train()
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    defense = LayerwiseDefense(base=PGDTraining(steps=2), scheme=scheme, eta=0.05)
    defense.training_loss(net, x, y).loss.backward()
    n_blocks = len(net.residual_blocks())
    assert len([k for k in defense.diagnostics() if "perturbation" in k]) == n_blocks
    assert all(p.shape == state.z[point].shape for state in defense.injector.states for point, p in state.p.items())


def test_warns_once_when_the_perturbation_stops_learning(tmp_path):
    from helpers import quickstart_config

    from ladlit.defenses.layerwise import LearningStalledWarning
    from ladlit.train import train

    # digits, batch 8: 144 steps per epoch, so the check (past 300 steps) runs at the end of epoch 3
    short = [
        "trainer.max_epochs=3",
        "dataset.batch_size=8",
        "train_attack_steps=1",
        "trainer.limit_val_batches=1",
        "dataset.test_subset=32",
    ]
    with pytest.warns(LearningStalledWarning, match=r"defense.eta=5.0 .*still near chance") as record:
        train(quickstart_config(tmp_path / "absurd", "defense=lad", "defense.eta=5.0", *short))
    assert sum(isinstance(w.message, LearningStalledWarning) for w in record) == 1

    with warnings.catch_warnings():
        warnings.simplefilter("error", LearningStalledWarning)
        train(quickstart_config(tmp_path / "lad", "defense=lad", "defense.eta=0.001", *short))  # a sane eta learns


def test_the_stall_check_waits_for_adversarial_trainings_own_slow_start():
    """The CPU study's losses (RESULTS 6.5): every healthy run was near ln 10 after 128 steps
    (PGD-AT 2.25-2.29), and at least 4 % under it after 300; eta 0.01 left it 1-2 % under."""
    from ladlit.defenses.layerwise import LearningStalledWarning

    def warns(steps: int, loss: float) -> bool:
        defense = LayerwiseDefense(eta=0.001)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            defense.on_train_epoch_end(EpochEnd(epoch=0, steps=steps, mean_loss=loss, num_classes=10))
        return any(isinstance(w.message, LearningStalledWarning) for w in record)

    assert not warns(128, 2.291)  # LAD at the chosen eta, seed 0, after its first epoch
    assert not warns(304, 2.207)  # LAD at eta 0.003 in the over-fitting regime: it learns
    assert warns(304, 2.256)  # LAD at eta 0.01 there: 17 % clean accuracy at best
    assert warns(304, 2.277)  # LAD-SM at eta 0.01


def _spy_outer_step(defense, seen):
    """Record what reaches the base's outer step (the adversarial input), then run it."""
    original = defense.base.outer_step

    def spy(model, x, x_adv, y, forward):
        seen.append(x_adv.detach().clone())
        return original(model, x, x_adv, y, forward)

    defense.base.outer_step = spy


def test_inject_during_attack_false_leaves_the_inner_loop_unperturbed(batch):
    x, y = batch
    net = tiny_net().eval()
    torch.manual_seed(0)
    plain = PGDTraining(steps=3, bn_mode="eval").inner_max(net, x, y, forward=net)
    seen = []
    for inject in (False, True):
        defense = LayerwiseDefense(base=PGDTraining(steps=3, bn_mode="eval"), eta=0.2, inject_during_attack=inject)
        _spy_outer_step(defense, seen)
        torch.manual_seed(0)
        defense.training_loss(net, x, y)
    assert torch.equal(seen[0], plain)  # no injection: the attack is the base's
    assert not torch.equal(seen[1], plain)  # injection: the attack ran the perturbed dynamics


def test_trades_clean_branch_stays_unperturbed_under_lad(batch):
    x, y = batch
    net = tiny_net().eval()  # BatchNorm on running statistics: both passes compute the same function
    out = LayerwiseDefense(base=TRADES(steps=2), scheme="strang_marchuk", eta=0.3).training_loss(net, x, y)
    torch.testing.assert_close(out.logs["trades/natural"], F.cross_entropy(net(x), y))


@pytest.mark.parametrize("scheme", ["lie_trotter", "strang_marchuk"])
def test_rms_scale_comes_from_the_state_at_the_injection_point(scheme, batch):
    x, y = batch
    net = tiny_net().train()
    eta = 0.07
    defense = LayerwiseDefense(base=PGDTraining(steps=2), scheme=scheme, eta=eta)
    defense.training_loss(net, x, y)
    c = defense.scheme.coefficient
    rms = lambda t: t.pow(2).mean((1, 2, 3)).sqrt()
    checked = 0
    for state in defense.injector.states:
        for point, p in state.p.items():
            torch.testing.assert_close(rms(p), c * eta * rms(state.z[point]), rtol=1e-4, atol=1e-7)
            other = "in" if point == "out" else "out"
            if state.z[other].shape == p.shape:  # the other end's state has another size: a swap would show
                assert not torch.allclose(rms(state.z[point]), rms(state.z[other]), rtol=1e-3)
            checked += 1
    assert checked == (3 if scheme == "lie_trotter" else 6)


def test_l2_and_sign_normalisations_are_their_formulas():
    torch.manual_seed(0)
    a, z = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4) * 0.5
    l2 = normalize_adjoint(a, z, "l2")
    torch.testing.assert_close(l2, a / a.flatten(1).norm(dim=1).view(3, 1, 1, 1))
    sign = normalize_adjoint(a, z, "sign")
    torch.testing.assert_close(sign, a.sign() * z.pow(2).mean((1, 2, 3)).sqrt().view(3, 1, 1, 1))
    assert torch.equal(normalize_adjoint(a, z, "none"), a)


def test_per_stage_and_per_block_eta_on_a_net_with_several_blocks_per_stage(batch):
    x, y = batch
    net = CifarResNet(depth=20, widths=(4, 8, 16)).train()  # 3 stages of 3 blocks
    per_stage = LayerwiseDefense(base=PGDTraining(steps=1), eta=[0.1, 0.2, 0.3])
    per_stage.training_loss(net, x, y)
    assert per_stage.block_etas(per_stage.injector.states) == [0.1] * 3 + [0.2] * 3 + [0.3] * 3
    nine = [0.01 * (i + 1) for i in range(9)]
    per_block = LayerwiseDefense(base=PGDTraining(steps=1), eta=nine)
    per_block.training_loss(net, x, y)
    assert per_block.block_etas(per_block.injector.states) == pytest.approx(nine)
    some = LayerwiseDefense(base=PGDTraining(steps=1), eta=[0.5, 0.6], blocks=[2, 7])
    some.training_loss(net, x, y)
    assert some.block_etas(some.injector.states) == [0, 0, 0.5, 0, 0, 0, 0, 0.6, 0]


def test_detach_false_gradient_equals_the_hand_written_second_order_gradient():
    """With detach=False the injected p_j = eta * a_j(w) is differentiated through: the weight
    gradient must equal autograd of the same loss written by hand with create_graph=True."""
    net = ExplicitResNet().eval()
    x, y = torch.rand(5, 6), torch.randint(0, 4, (5,))
    eta = 0.3
    base = PGDTraining(eps=0.1, steps=1, bn_mode="eval")
    torch.manual_seed(0)
    x_adv = base.inner_max(net, x, y, forward=net)  # the same draw as the defense's below
    defense = LayerwiseDefense(base=base, eta=eta, normalize="none", detach=False, inject_during_attack=False)
    net.zero_grad()
    torch.manual_seed(0)
    defense.training_loss(net, x, y).loss.backward()
    ours = [p.grad.clone() for p in net.parameters()]
    # by hand: adjoints at x_adv with a graph to the weights, Lie-Trotter p_n = eta * a_n, outer CE
    states, h = [], x_adv.clone().requires_grad_(True)
    for block in net.blocks:
        states.append(h)
        h = block(h)
    adjoints = torch.autograd.grad(F.cross_entropy(net.head(h), y, reduction="sum"), states, create_graph=True)
    h = x_adv
    for block, a in zip(net.blocks, adjoints):
        h = block(h) + eta * a
    net.zero_grad()
    F.cross_entropy(net.head(h), y).backward()
    for mine, theirs in zip(ours, [p.grad for p in net.parameters()]):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)
    detached = LayerwiseDefense(base=base, eta=eta, normalize="none", detach=True, inject_during_attack=False)
    net.zero_grad()
    torch.manual_seed(0)
    detached.training_loss(net, x, y).loss.backward()
    assert not all(torch.allclose(a, p.grad) for a, p in zip(ours, net.parameters()))  # the second-order term matters


def test_each_fresh_copy_is_hooked_itself_even_at_a_freed_copys_address(batch):
    """Probes train a fresh deep copy per call, freed right after; CPython soon hands a new copy
    the address (id) of a freed one, and the defense must not take it for that copy (it would
    inject into the freed copy's blocks, i.e. not at all)."""
    import gc

    defense = LayerwiseDefense(PGDTraining(eps=0.03, steps=1), eta=0.01)
    net, seen, reused = tiny_net(), set(), False
    for _ in range(300):
        model = copy.deepcopy(net)
        reused = id(model) in seen
        seen.add(id(model))
        defense.training_loss(model, *batch)
        assert {id(b) for b in defense.injector.blocks} <= {id(m) for m in model.modules()}
        del model
        gc.collect()
        if reused:
            break
    assert reused  # an address was reused, so the case above was exercised


def test_every_epoch_end_reaches_the_defense_and_through_lad_its_base(tmp_path, monkeypatch):
    """One hook, one record per epoch: the epoch, the optimizer steps so far, the epoch's mean loss."""
    from helpers import quickstart_config

    from ladlit.train import train

    seen: list[EpochEnd] = []
    monkeypatch.setattr(PGDTraining, "on_train_epoch_end", lambda self, end: seen.append(end))
    short = ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1"]
    train(quickstart_config(tmp_path, "defense=lad", "train_attack_steps=1", "dataset.test_subset=32", *short))
    assert [(end.epoch, end.steps, end.num_classes) for end in seen] == [(0, 3, 10), (1, 6, 10)]
    assert all(0 < end.mean_loss < 10 for end in seen)


def test_a_base_that_is_not_an_input_space_defense_is_refused():
    from ladlit.defenses import Natural
    from ladlit.errors import ConfigError

    with pytest.raises(ConfigError, match="base must be an input-space defense"):
        LayerwiseDefense(base=Natural())


def test_a_layerwise_base_is_refused_naming_the_config_choice_and_every_base():
    """`defense@defense.base=lad_sm` under LAD: the message names the key to change and every option
    it takes, which are exactly conf/defense's input-space defenses; no object repr."""
    from helpers import CONF, compose_config
    from hydra import compose, initialize_config_dir
    from hydra.utils import get_class

    from ladlit.config import build
    from ladlit.defenses import InputAdversarial
    from ladlit.defenses.layerwise import BASE_OPTIONS
    from ladlit.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        build(compose_config("train", ["defense=lad", "defense@defense.base=lad_sm"]).defense)
    message = str(refused.value)
    assert message.startswith("defense.base must be an input-space defense") and "object at 0x" not in message
    assert "got LayerwiseDefense" in message and message.endswith(f"defense@defense.base={'|'.join(BASE_OPTIONS)}")
    assert all(name in message for name in ("PGD-AT", "TRADES", "MART", "FGSM-RS", "AWP"))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):  # the group alone: quicker
        targets = {
            p.stem: compose(overrides=[f"+defense={p.stem}"]).defense._target_ for p in CONF.glob("defense/*.yaml")
        }
    assert set(BASE_OPTIONS) == {o for o, target in targets.items() if issubclass(get_class(target), InputAdversarial)}
