"""`experiments/determinism_check.py` trains a committed run again for its first epochs, under the
full run's schedule, and tells its history apart from another run's."""

from __future__ import annotations

import pytest
from helpers import experiment_script, quickstart_config

from ladlit.train import train

OVERRIDES = ["experiment=quickstart", "logger=csv", "train_attack_steps=1", "trainer.limit_train_batches=3"]


@pytest.fixture(scope="module")
def check():
    return experiment_script("determinism_check")


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A finished 2-epoch quickstart run, as the study commits one."""
    run = tmp_path_factory.mktemp("committed")
    train(quickstart_config(run, *OVERRIDES[2:], "trainer.max_epochs=2"))
    return run


def test_the_first_epoch_trained_again_repeats_the_committed_one(check, committed, tmp_path):
    # the committed run's own config (2 epochs, so its schedule), stopped after the epoch compared
    result = check.check(committed, [*OVERRIDES, "trainer.max_epochs=2"], 1, tmp_path / "again")
    assert result["difference"] == "", result
    assert {"train/loss", "train/acc", "val/acc_clean", "val/robust_acc"} <= set(result["keys_compared"])
    assert len(result["history"]["retrained"]) == 1 and result["config_differences"] == []


def test_another_seed_is_told_apart(check, committed, tmp_path):
    result = check.check(committed, [*OVERRIDES, "trainer.max_epochs=2", "seed=1"], 1, tmp_path / "again")
    assert result["difference"].startswith("epoch 0:") and "seed: 0 -> 1" in result["config_differences"]
