"""FGSM-RS (Wong, Rice and Kolter 2020) against its formula, under LAD, and the detector of its
catastrophic over-fitting on recorded histories."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers import compose_config, quickstart_config, tiny_net
from hydra.utils import instantiate
from torch import nn

from ladlit.callbacks import CatastrophicOverfitting, CatastrophicOverfittingWarning, collapsed_epochs
from ladlit.defenses import FGSMRS, LayerwiseDefense
from ladlit.train import train

EPS = 0.1


def test_one_signed_step_of_one_and_a_quarter_eps_from_a_uniform_start_then_projection():
    torch.manual_seed(0)
    weight = torch.randn(3, 12)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, bias=False))
    model[1].weight.data = weight
    x, y = torch.rand(5, 1, 3, 4), torch.tensor([0, 1, 2, 0, 1])

    torch.manual_seed(7)
    x_adv = FGSMRS(eps=EPS).inner_max(model, x, y, forward=model)

    torch.manual_seed(7)  # by hand: the same uniform start, the cross-entropy's input gradient of a linear model
    start = (x + torch.empty(x.shape).uniform_(-EPS, EPS)).clamp(0, 1)
    p = torch.softmax(start.flatten(1) @ weight.T, dim=1)
    grad = ((p - F.one_hot(y, 3).float()) @ weight).view_as(x)
    stepped = start + 1.25 * EPS * grad.sign()
    expected = torch.minimum(torch.maximum(stepped, x - EPS), x + EPS).clamp(0, 1)
    assert torch.allclose(x_adv, expected, atol=1e-6)
    assert (x_adv - x).abs().max() <= EPS + 1e-6


def test_fgsm_rs_is_single_step_whatever_train_attack_steps_says():
    base = instantiate(compose_config("train", ["defense=fgsm_rs", "train_attack_steps=7"]).defense)
    assert isinstance(base, FGSMRS) and base.steps == 1 and base.alpha == pytest.approx(1.25 * base.eps)


def test_lad_on_fgsm_rs_takes_its_adjoints_from_the_one_backward_pass(batch):
    defense = instantiate(compose_config("train", ["defense=lad_fgsm_rs", "defense.eta=0.01"]).defense)
    assert isinstance(defense, LayerwiseDefense) and isinstance(defense.base, FGSMRS)
    net, passes = tiny_net(), []
    defense.base.inner_max = _counting(defense.base.inner_max, passes)
    out = defense.training_loss(net, *batch)
    assert torch.isfinite(out.loss) and passes == [1]
    assert all(state.p for state in defense.injector.states)  # every block got its perturbation from that pass


def _counting(inner_max, passes):
    def wrapped(model, x, y, forward, tap=None):
        counted = []

        class Counting:
            def leaves(self):
                return tap.leaves()

            def receive(self, grads):
                counted.append(1)
                tap.receive(grads)

        result = inner_max(model, x, y, forward, Counting())
        passes.append(len(counted))
        return result

    return wrapped


def history(pgd, fgsm):
    return [{"epoch": e, "val/acc_pgd10": p, "val/acc_fgsm": f} for e, (p, f) in enumerate(zip(pgd, fgsm))]


@pytest.mark.parametrize(
    ("pgd", "fgsm", "collapsed"),
    [
        # Wong et al.'s picture: PGD accuracy falls to almost nothing within an epoch as FGSM accuracy soars
        ([0.30, 0.38, 0.42, 0.03, 0.01], [0.36, 0.44, 0.48, 0.80, 0.86], [3, 4]),
        # robust over-fitting: a slow decline of both, never a collapse
        ([0.30, 0.38, 0.42, 0.40, 0.37], [0.36, 0.44, 0.48, 0.47, 0.45], []),
        # a model that breaks altogether (both fall): not catastrophic over-fitting
        ([0.30, 0.38, 0.42, 0.05, 0.02], [0.36, 0.44, 0.48, 0.07, 0.03], []),
        # a collapse, then a partial recovery above a third of the best
        ([0.30, 0.42, 0.10, 0.20], [0.36, 0.48, 0.70, 0.60], [2]),
    ],
)
def test_the_detector_on_recorded_histories(pgd, fgsm, collapsed):
    assert collapsed_epochs(history(pgd, fgsm)) == collapsed


def test_the_callback_marks_each_validation_and_warns_once():
    callback = CatastrophicOverfitting()
    marks = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch, record in enumerate(history([0.3, 0.42, 0.03, 0.01], [0.36, 0.48, 0.80, 0.86])):
            metrics = {k: torch.tensor(v) for k, v in record.items() if k.startswith("val/")}
            trainer = SimpleNamespace(
                callback_metrics=metrics, sanity_checking=False, loggers=[], global_step=epoch, current_epoch=epoch
            )
            callback.on_validation_end(trainer, None)
            marks.append(float(metrics[CatastrophicOverfitting.KEY]))
    assert marks == [0.0, 0.0, 1.0, 1.0]
    assert [w.category for w in caught] == [CatastrophicOverfittingWarning]
    assert "epoch 2" in str(caught[0].message)


def test_a_run_validated_with_pgd10_and_fgsm_records_the_mark_in_its_history(tmp_path):
    overrides = ["attack=[pgd10,fgsm]", "trainer.max_epochs=2", "train_attack_steps=1", "defense=fgsm_rs"]
    train(quickstart_config(tmp_path, *overrides))
    records = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [r["val/catastrophic_overfit"] for r in records] == [0.0, 0.0]
