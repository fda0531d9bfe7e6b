"""The label-leak probe and guard (`ladlit.defenses.leak`, `callbacks.LabelLeakGuard`): a hand-made
network that reads the label out of its own layer-wise perturbation is caught, a normal one is
not, the guard logs every validation and warns once, and `ladlit.eval label_leak=true` records it."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import pytest
import torch
from helpers import compose_config, quickstart_config, tiny_net
from torch import Tensor, nn

from ladlit.callbacks import LabelLeakGuard, LabelLeakWarning
from ladlit.defenses import LayerwiseDefense, PGDTraining
from ladlit.defenses.leak import label_leak, leak_excess, leak_threshold
from ladlit.eval import evaluate_checkpoint
from ladlit.train import train

C = 10


class Encoder(nn.Module):
    """A transition block (images in, a C-vector out) whose state is the same for every image:
    -1 everywhere, a little less negative at class 0, so the clean prediction is class 0."""

    def forward(self, x: Tensor) -> Tensor:
        state = torch.full((len(x), C), -1.0) + 0.1 * nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), C)
        return state + 0 * x.flatten(1).sum(1, keepdim=True)


class Reader(nn.Module):
    """logits = z - K relu(z). At the clean state (all negative) the relu is flat, so the adjoint
    is softmax(z) - onehot(label); the perturbation eta * adjoint lifts every class but the label
    above zero, and the relu term then pushes exactly those classes down: with K > 1 the network
    predicts the label its perturbation was computed from. K = 0 is a network that does not."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, z: Tensor) -> Tensor:
        return z - self.k * torch.relu(z)


class HandMade(nn.Module):
    def __init__(self, k: float) -> None:
        super().__init__()
        self.encoder, self.reader = Encoder(), Reader(k)

    def residual_blocks(self) -> list[nn.Module]:
        return [self.encoder]

    def forward(self, x: Tensor) -> Tensor:
        return self.reader(self.encoder(x))


def defense() -> LayerwiseDefense:
    """The raw adjoint at a large eta, read at the unperturbed state (no injection during the
    attack, so the adjoint is the clean one at every inner step)."""
    return LayerwiseDefense(PGDTraining(eps=0.03, steps=2), eta=100.0, normalize="none", inject_during_attack=False)


@pytest.mark.parametrize(("k", "leaks"), [(20.0, True), (0.0, False)])
def test_the_probe_catches_a_network_that_reads_the_label_from_its_perturbation(k, leaks):
    x, y = torch.rand(40, 3, 4, 4), torch.arange(40) % C
    result = label_leak(defense(), HandMade(k), x, y, C, batch=16)
    assert result["clean"] == pytest.approx(0.1)  # class 0 for every image
    if leaks:
        assert result["shifted_given_shifted"] == 1.0 and result["true_given_true"] == 1.0
    else:
        assert result["shifted_given_shifted"] == 0.0 and result["true_given_true"] == 0.0
    # the guard's statistic: the excess over the clean prediction (class 0, the shifted label of y = 9)
    assert leak_excess(defense(), HandMade(k), x, y, C) == pytest.approx(result["shifted_given_shifted"] - 0.1)


def test_a_network_that_learned_nothing_is_not_flagged():
    """An untrained network follows a handed label no more often than its clean prediction hits
    it; the raw share sits near chance, which is why the guard measures the excess."""
    torch.manual_seed(0)
    net, x, y = tiny_net(), torch.rand(256, 3, 8, 8), torch.randint(0, C, (256,))
    excess = leak_excess(LayerwiseDefense(PGDTraining(eps=0.03, steps=1), eta=0.3), net, x, y, C)
    assert excess < leak_threshold(C, 256)
    assert leak_threshold(C, 256) == pytest.approx(3 * (0.1 * 0.9 / 256) ** 0.5)


def test_the_probe_leaves_the_network_and_the_rng_as_they_were(net, batch):
    x, y = batch
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(3)
    label_leak(LayerwiseDefense(PGDTraining(eps=0.03, steps=1), eta=0.01), net, x, y, 10)
    drawn = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(drawn, torch.rand(1)) and net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_the_probe_leaves_no_hooked_copy_behind_for_the_garbage_collector(net, batch):
    """Each probe runs the training forward on a copy of the network. A hooked copy is a reference
    cycle (its hooks hold its injector, the injector its blocks) holding a batch of states for every
    block; left to Python's rarest collection, it grew LAD runs by a probe's worth per validation."""
    import gc

    from ladlit.defenses.hooks import AdjointInjector

    def injectors() -> int:
        return sum(isinstance(o, AdjointInjector) for o in gc.get_objects())

    x, y = batch
    defense = LayerwiseDefense(PGDTraining(eps=0.03, steps=1), eta=0.01)
    defense.training_loss(net, x, y)  # the network's own injector, as in training
    gc.collect()
    gc.disable()
    try:
        before = injectors()
        for _ in range(3):
            leak_excess(defense, net, x, y, 10)
        assert injectors() == before == 1
    finally:
        gc.enable()
    defense.training_loss(net, x, y)  # training goes on, on the network's own hooks
    assert defense.injector is net._ladlit_adjoint_injector


def guard_trainer(module, x, y):
    loader = [(x, y)]
    return SimpleNamespace(
        sanity_checking=False,
        callback_metrics={},
        loggers=[],
        global_step=0,
        current_epoch=0,
        datamodule=SimpleNamespace(val_dataloader=lambda: loader, num_classes=C),
    )


def test_the_guard_logs_every_validation_and_warns_once():
    x, y = torch.rand(12, 3, 4, 4), torch.arange(12) % C
    module = SimpleNamespace(defense=defense(), net=HandMade(20.0), device=torch.device("cpu"))
    guard = LabelLeakGuard(n_examples=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rates = []
        for _ in range(3):
            trainer = guard_trainer(module, x, y)
            guard.on_validation_end(trainer, module)
            rates.append(float(trainer.callback_metrics[LabelLeakGuard.KEY]))
            assert float(trainer.callback_metrics[LabelLeakGuard.FLAG]) == 1.0
    assert rates == [1.0, 1.0, 1.0]
    assert [w.category for w in caught] == [LabelLeakWarning] and "defense.eta=100.0" in str(caught[0].message)


def test_the_guard_stays_quiet_on_a_network_that_does_not_leak_and_on_other_defenses():
    x, y = torch.rand(12, 3, 4, 4), torch.arange(12) % C
    guard = LabelLeakGuard(n_examples=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = SimpleNamespace(defense=defense(), net=HandMade(0.0), device=torch.device("cpu"))
        trainer = guard_trainer(quiet, x, y)
        guard.on_validation_end(trainer, quiet)
        assert float(trainer.callback_metrics[LabelLeakGuard.KEY]) == 0.0
        assert float(trainer.callback_metrics[LabelLeakGuard.FLAG]) == 0.0
        base = SimpleNamespace(defense=PGDTraining(), net=HandMade(20.0), device=torch.device("cpu"))
        trainer = guard_trainer(base, x, y)
        guard.on_validation_end(trainer, base)
        assert LabelLeakGuard.KEY not in trainer.callback_metrics


def test_a_layerwise_run_records_the_rate_and_eval_writes_the_probe(tmp_path):
    short = [
        "defense=lad",
        "defense.eta=0.001",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "train_attack_steps=1",
    ]
    train(quickstart_config(tmp_path, *short))
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert all(-1.0 <= r["val/label_leak"] <= 1.0 and r["val/leaking"] in (0.0, 1.0) for r in history)
    assert len(history) == 2
    evaluate_checkpoint(
        compose_config(
            "eval",
            [f"ckpt={tmp_path}", "attack=[]", "n_examples=32", "sanity_examples=0", "eps_sweep=[]", "label_leak=true"],
        )
    )
    record = json.loads((tmp_path / "checkpoints" / "metrics.json").read_text())["evaluations"]
    (probe,) = [e["label_leak"] for k, e in record.items() if "| label_leak |" in k]
    assert set(probe) == {"clean", "true_given_true", "true_given_shifted", "shifted_given_shifted"}
    assert "## Label leak" in (tmp_path / "checkpoints" / "metrics.md").read_text()
