"""Every documented option of the evaluation attacks changes what they do, as documented: PGD's
start, steps, step size and loss, each restart's own start, the template's modes, what the
torchattacks-backed attacks are handed, AutoAttack's cascade and its fast copy, and the attack
configs' names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers import compose_config, tiny_net
from hydra.utils import instantiate
from torch import nn

from ladlit.attacks import APGDCE, PGD, AutoAttack, Square
from ladlit.attacks.core import cross_entropy_sum, gaussian_start, uniform_start
from ladlit.attacks.fast_forward import attack_forward

EPS = 0.1


def linear_model() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    weight = torch.randn(3, 12)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, bias=False))
    model[1].weight.data = weight.clone()
    return model, weight


def input_gradient(loss: str, weight: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d/dx of the summed loss of a linear model, by hand: CE (softmax - onehot) W; the CW margin
    max_{j != y} z_j - z_y, W_j* - W_y."""
    z = x.flatten(1) @ weight.T
    if loss == "ce":
        return ((torch.softmax(z, 1) - F.one_hot(y, 3).float()) @ weight).view_as(x)
    runner_up = z.masked_fill(F.one_hot(y, 3).bool(), float("-inf")).argmax(1)
    return (weight[runner_up] - weight[y]).view_as(x)


@pytest.mark.parametrize("loss", ["ce", "margin"])
@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_takes_steps_signed_steps_of_alpha_on_its_loss_from_its_start(loss, random_start):
    model, weight = linear_model()
    x, y = torch.rand(6, 1, 3, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(5)
    ours = PGD(eps=EPS, alpha=0.03, steps=3, random_start=random_start, loss=loss)(model, x, y)
    torch.manual_seed(5)  # by hand: the same draw for the start, or x itself
    by_hand = (x + torch.empty(x.shape).uniform_(-EPS, EPS)).clamp(0, 1) if random_start else x.clone()
    for _ in range(3):
        by_hand = by_hand + 0.03 * input_gradient(loss, weight, by_hand, y).sign()
        by_hand = torch.minimum(torch.maximum(by_hand, x - EPS), x + EPS).clamp(0, 1)
    torch.testing.assert_close(ours, by_hand, atol=1e-6, rtol=0)


class Lambda(nn.Module):
    """A model that is a plain function of its input."""

    def __init__(self, function) -> None:
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def test_each_restart_draws_its_own_random_start(monkeypatch):
    import ladlit.attacks.pgd as pgd_module

    starts = []

    def ascent(forward, x, x_start, *args, **kwargs):
        starts.append(x_start.clone())
        return x_start

    monkeypatch.setattr(pgd_module, "pgd_ascent", ascent)
    always_right = lambda x: torch.tensor([[1.0, 0.0]]).repeat(len(x), 1)  # never fooled: every restart runs
    x = torch.full((4, 1, 2, 2), 0.5)
    PGD(eps=EPS, restarts=3)(Lambda(always_right), x, torch.zeros(4, dtype=torch.long))
    assert len(starts) == 3
    assert all((s - x).abs().max() <= EPS + 1e-7 for s in starts)
    assert not torch.equal(starts[0], starts[1]) and not torch.equal(starts[1], starts[2])


def test_an_attack_called_under_no_grad_still_differentiates(net, batch):
    x, y = batch
    net.eval()
    with torch.no_grad():  # where validation calls it
        x_adv = PGD(eps=8 / 255, steps=3)(net, x, y)
        assert F.cross_entropy(net(x_adv), y) > F.cross_entropy(net(x), y)


def test_an_attack_under_inference_mode_says_how_to_run_it(net, batch):
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"Trainer\(inference_mode=False\)"):
        PGD(steps=1)(net, *batch)


def test_the_random_starts_stay_in_the_unit_box():
    x = torch.tensor([0.0, 1.0]).repeat(5000)
    torch.manual_seed(0)
    for start in (uniform_start(x, EPS), gaussian_start(x)):
        assert start.min() >= 0.0 and start.max() <= 1.0


def test_the_uniform_start_lands_on_the_same_pixels_in_either_memory_format():
    x = torch.rand(2, 3, 4, 4)
    torch.manual_seed(0)
    default = uniform_start(x, EPS)
    torch.manual_seed(0)
    channels_last = uniform_start(x.contiguous(memory_format=torch.channels_last), EPS)
    assert torch.equal(default, channels_last)


def test_the_summed_cross_entropy_gives_each_example_a_gradient_free_of_the_batch_size():
    logits = torch.randn(5, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1])
    (whole,) = torch.autograd.grad(cross_entropy_sum(y)(logits), logits)
    first = logits[:1].detach().requires_grad_(True)
    (alone,) = torch.autograd.grad(cross_entropy_sum(y[:1])(first), first)
    torch.testing.assert_close(whole[:1], alone)


def recorded(monkeypatch, name: str) -> list:
    """Replace torchattacks.<name> by the real class that records each instance and returns x unchanged."""
    import torchattacks

    made = []

    class Recorded(getattr(torchattacks, name)):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def __call__(self, x, y):
            return x

    monkeypatch.setattr(torchattacks, name, Recorded)
    return made


def test_apgd_ce_and_square_run_with_the_budget_they_were_given(monkeypatch, net, batch):
    apgd, square = recorded(monkeypatch, "APGD"), recorded(monkeypatch, "Square")
    APGDCE(eps=0.05, steps=7, restarts=2, seed=3)(net, *batch)
    Square(eps=0.05, n_queries=11, seed=4)(net, *batch)
    (a,), (s,) = apgd, square
    assert (a.norm, a.eps, a.steps, a.n_restarts, a.loss, a.seed) == ("Linf", 0.05, 7, 2, "ce", 3)
    assert (s.norm, s.eps, s.n_queries, s.seed) == ("Linf", 0.05, 11, 4)


def test_the_rand_version_is_apgd_ce_and_apgd_dlr_with_expectation_over_20_draws():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 10))
    attack = AutoAttack(eps=EPS, version="rand", seed=3)
    parts = dict(attack.components(net, n_classes=10))
    assert list(parts) == attack.names() == ["apgd-ce", "apgd-dlr"]
    assert [p.loss for p in parts.values()] == ["ce", "dlr"]
    assert all((p.steps, p.n_restarts, p.eot_iter, p.eps, p.seed) == (100, 1, 20, EPS, 3) for p in parts.values())
    standard = dict(AutoAttack(eps=EPS, seed=3).components(net, n_classes=4))
    assert all(p.seed == 3 for p in standard.values())
    assert standard["apgd-t"].n_target_classes == standard["fab-t"].n_target_classes == 3  # every other class
    with pytest.raises(ValueError, match="'standard' or 'rand'"):
        AutoAttack(version="plus")


def test_autoattack_attacks_only_what_is_still_robust_and_adds_up_its_time(monkeypatch):
    """Four classes, scores in pixels 0-3, the example's id in pixel 4. Example 1 is misclassified
    clean; component a fools 0 and 2; b is left 3 and 4 and fools 4."""
    model = Lambda(lambda x: x.flatten(1)[:, :4])
    x = torch.zeros(5, 1, 1, 5)
    x[:, 0, 0, 0] = 1.0
    x[1, 0, 0, 0], x[1, 0, 0, 1] = 0.0, 1.0  # predicts class 1
    x[:, 0, 0, 4] = torch.arange(5.0)
    y = torch.zeros(5, dtype=torch.long)
    seen = {}

    def fooling(name, ids):
        def attack(xb, yb):
            seen.setdefault(name, []).append(xb[:, 0, 0, 4].long().tolist())
            candidate = xb.clone()
            chosen = torch.tensor([int(i) in ids for i in xb[:, 0, 0, 4]])
            candidate[chosen, 0, 0, 0] = -1.0  # class 0 loses: fooled
            return candidate

        return attack

    parts = [("a", fooling("a", {0, 2})), ("b", fooling("b", {4}))]
    monkeypatch.setattr(AutoAttack, "components", lambda self, attacked, n_classes: parts)
    monkeypatch.setattr(AutoAttack, "names", lambda self: ["a", "b"])
    clock = iter(range(100))
    monkeypatch.setattr("ladlit.attacks.autoattack.time", SimpleNamespace(perf_counter=lambda: next(clock)))
    attack = AutoAttack(eps=EPS)
    x_adv = attack(model, x, y)
    assert seen == {"a": [[0, 2, 3, 4]], "b": [[3, 4]]}
    assert [i for i in range(5) if not torch.equal(x_adv[i], x[i])] == [0, 2, 4]
    attack(model, x, y)
    assert dict(attack.seconds) == {"a": 2, "b": 2}  # one tick per component per call, summed over calls


def test_autoattack_reads_the_number_of_classes_off_the_model(monkeypatch):
    classes = []

    def components(self, attacked, n_classes):
        classes.append(n_classes)
        return [("a", lambda xb, yb: xb)]

    monkeypatch.setattr(AutoAttack, "components", components)
    monkeypatch.setattr(AutoAttack, "names", lambda self: ["a"])
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    x = torch.rand(3, 1, 3, 4)
    AutoAttack(eps=EPS)(model, x, model(x).argmax(1))
    assert classes == [4]


def test_the_fast_copy_of_a_training_model_is_the_eval_mode_function_with_frozen_weights():
    net = tiny_net()
    torch.manual_seed(1)
    for module in net.modules():  # running statistics unlike a batch's own
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    net.train()
    fast = attack_forward(net)
    assert net.training and not any(m.training for m in fast.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())  # folded, as from an eval-mode model
    assert not any(p.requires_grad for p in fast.parameters())
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), net.eval()(x), rtol=1e-5, atol=1e-5)


def test_the_attack_configs_are_what_their_names_say():
    cfg = compose_config("eval", ["ckpt=x", "attack=[fgsm,pgd10,pgd20,cw,autoattack]", "eps=0.1"])
    built = {name: instantiate(node) for name, node in cfg.attack.items()}
    for name, steps, loss in (("pgd10", 10, "ce"), ("pgd20", 20, "ce"), ("cw", 20, "margin")):
        pgd = built[name]
        assert (pgd.steps, pgd.loss, pgd.restarts, pgd.random_start) == (steps, loss, 1, True), name
        assert pgd.alpha == pytest.approx(0.1 / 4) and pgd.eps == pytest.approx(0.1)
    fgsm, auto = built["fgsm"], built["autoattack"]
    assert (fgsm.steps, fgsm.alpha, fgsm.random_start) == (1, pytest.approx(0.1), False)
    assert (auto.version, auto.n_classes, auto.workers, auto.eps) == ("standard", None, 1, pytest.approx(0.1))
