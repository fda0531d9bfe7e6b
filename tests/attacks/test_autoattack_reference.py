"""Our AutoAttack breaks exactly the examples the reference implementation (fra31/auto-attack,
PyPI's `pyautoattack`, the `compare` extra) breaks, on a trained quickstart model."""

from __future__ import annotations

import pytest
import torch
from helpers import experiment_script, quickstart_config

from ladlit.train import train

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`

pytest.importorskip("pyautoattack", reason="the reference AutoAttack is not installed: pip install -e '.[compare]'")


@pytest.fixture(scope="module")
def bench():
    return experiment_script("bench_autoattack")


@pytest.mark.timeout(600)
def test_ours_and_the_reference_agree_on_every_example(tmp_path, bench):
    # 4 epochs leave 10 of the 12 examples robust (measured), so every component attacks some
    train(quickstart_config(tmp_path, "trainer.max_epochs=4"))
    net, x, y, eps = bench.load_examples(str(tmp_path), 12, 12, torch.device("cpu"))
    result = bench.compare(net, x, y, eps, 12, torch.device("cpu"))
    assert result["disagree"] == [], bench.markdown(result)
    clean = (net(x).argmax(1) == y).float().mean().item()
    assert 0 < result["ladlit"]["robust_acc"] < clean  # the model is neither broken nor untouched by the attack
    assert set(result["ladlit"]["split"]) <= {"apgd-ce", "apgd-t", "fab-t", "square"}


def test_each_component_is_configured_as_the_reference_configures_it():
    from pyautoattack import AutoAttack as Reference

    from ladlit.attacks import AutoAttack

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10))
    ref = Reference(net, eps=0.1, version="standard", seed=0, device="cpu")
    ours = dict(AutoAttack(eps=0.1).components(net, n_classes=10))
    assert list(ours) == ref.attacks_to_run
    assert ours["apgd-ce"].steps == ref.apgd.n_iter and ours["apgd-ce"].n_restarts == ref.apgd.n_restarts
    assert ours["apgd-ce"].thr_decr == ref.apgd.thr_decr and ours["apgd-ce"].eot_iter == ref.apgd.eot_iter
    assert ours["apgd-t"].steps == ref.apgd_targeted.n_iter
    assert ours["apgd-t"].n_target_classes == ref.apgd_targeted.n_target_classes
    assert ours["fab-t"].steps == ref.fab.n_iter and ours["fab-t"].n_restarts == ref.fab.n_restarts
    assert ours["fab-t"].n_target_classes == ref.fab.n_target_classes
    assert (ours["fab-t"].alpha_max, ours["fab-t"].eta, ours["fab-t"].beta) == (
        ref.fab.alpha_max,
        ref.fab.eta,
        ref.fab.beta,
    )
    square = ours["square"]
    assert (square.n_queries, square.p_init, square.rescale_schedule) == (
        ref.square.n_queries,
        ref.square.p_init,
        ref.square.rescale_schedule,
    )
