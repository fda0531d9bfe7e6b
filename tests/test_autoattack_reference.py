"""Our AutoAttack breaks exactly the examples the reference implementation (fra31/auto-attack,
PyPI's `pyautoattack`, the `compare` extra) breaks, on a trained quickstart model."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from conftest import REPO, quickstart_config
from ladlit.train import train

pytest.importorskip("pyautoattack", reason="the reference AutoAttack is not installed: pip install -e '.[compare]'")

spec = importlib.util.spec_from_file_location("bench_autoattack", REPO / "experiments" / "bench_autoattack.py")


@pytest.fixture(scope="module")
def bench():
    import sys

    sys.path.insert(0, str(REPO / "experiments"))  # for benchlib
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(600)
def test_ours_and_the_reference_agree_on_every_example(tmp_path, bench):
    train(quickstart_config(tmp_path, "trainer.max_epochs=6"))
    net, x, y, eps = bench.load_examples(str(tmp_path), 24, 24, torch.device("cpu"))
    result = bench.compare(net, x, y, eps, 24, torch.device("cpu"))
    assert result["disagree"] == [], bench.markdown(result)
    clean = (net(x).argmax(1) == y).float().mean().item()
    assert 0 < result["ladlit"]["robust_acc"] < clean  # the model is neither broken nor untouched by the attack
    assert set(result["ladlit"]["split"]) <= {"apgd-ce", "apgd-t", "fab-t", "square"}
