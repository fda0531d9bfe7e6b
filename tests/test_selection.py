"""Which checkpoint a run tests, and what it may be chosen on: the best validated epoch, never a
test number (no validation split: the last epoch, and the record says so; an optimising sweep is
refused), never an epoch the label-leak guard flagged, and the rule is only asked where
validation ran. A sweep's stopped trial never becomes Optuna's best."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from helpers import quickstart_config, run_cli, tiny_net

import ladlit.callbacks
from ladlit.defenses import LayerwiseDefense, PGDTraining
from ladlit.defenses.leak import label_leak, leak_excess
from ladlit.records import best_epoch, read_json
from ladlit.train import train

SHORT = ("train_attack_steps=1", "trainer.limit_train_batches=2")


def test_without_a_validation_split_the_last_epoch_is_tested_and_the_record_says_so(tmp_path):
    metrics = train(quickstart_config(tmp_path, "dataset.val_size=0", "trainer.max_epochs=1", *SHORT))
    record = read_json(tmp_path / "metrics.json")
    assert record["selection"].startswith("last epoch: no validation split (dataset.val_size=0)")
    assert record["best_checkpoint"] is None and not (tmp_path / "checkpoints" / "best.ckpt").exists()
    assert (
        record["kernels"]["cpu"] and record["kernels"]["aten"]
    )  # which kernels computed it (bf16 repeats only on the same)
    assert not any(
        key.startswith("val/") for epoch in record["history"] for key in epoch
    )  # the test set validated nothing
    assert "test/acc_pgd20" in metrics and math.isnan(metrics["val/best_robust_acc"])


def test_an_optimising_sweep_without_a_validation_split_is_refused_before_any_trial(tmp_path, monkeypatch):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=optuna", "experiment=quickstart", "defense=lad", "dataset.val_size=0"]
    args += ["trainer.max_epochs=1", *SHORT, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={sweep_dir}"]
    code, printed = run_cli("train", args, monkeypatch)
    assert code == 2 and "dataset.val_size" in printed and "validation" in printed, printed[-2000:]
    assert not sweep_dir.exists()


def test_validating_every_few_epochs_asks_the_checkpoint_rule_only_where_validation_ran(tmp_path):
    from pytorch_lightning.callbacks import model_checkpoint

    model_checkpoint.warning_cache.clear()  # Lightning warns once per process: start from none
    overrides = ("trainer.max_epochs=2", "+trainer.check_val_every_n_epoch=2", *SHORT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(quickstart_config(tmp_path, *overrides))
    assert not [w for w in caught if "could not find the monitored key" in str(w.message)]
    record = read_json(tmp_path / "metrics.json")
    assert record["best_checkpoint"] == "checkpoints/best.ckpt"
    assert torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=False)["epoch"] == 1


def flag_epochs(monkeypatch, flagged: set[int]) -> None:
    """The label-leak guard sees a leak (an excess of 1) at the epochs in `flagged`, none elsewhere."""
    epochs = iter(range(100))
    monkeypatch.setattr(ladlit.callbacks, "leak_excess", lambda *args: 1.0 if next(epochs) in flagged else -1.0)


@pytest.mark.parametrize(("flagged", "selected"), [({1}, 0), ({0, 1}, None)])
def test_an_epoch_the_label_leak_guard_flags_is_never_selected(tmp_path, monkeypatch, flagged, selected):
    """Epoch 1 is the better one here (robust validation accuracy rises over the quickstart's first
    epochs); flagged, epoch 0 is selected; with both flagged nothing is, and the last is tested."""
    flag_epochs(monkeypatch, flagged)
    overrides = ("defense=lad", "defense.eta=0.001", "trainer.max_epochs=2", "dataset.train_subset=600")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the guard's own LabelLeakWarning
        train(quickstart_config(tmp_path, *overrides, "train_attack_steps=1"))
    record = read_json(tmp_path / "metrics.json")
    assert [epoch.get("val/leaking") for epoch in record["history"]] == [float(e in flagged) for e in (0, 1)]
    if selected is None:
        assert record["best_checkpoint"] is None and best_epoch(record["history"]) is None
        assert record["selection"].startswith("last epoch: no epoch was selectable")
    else:
        assert best_epoch(record["history"])["epoch"] == selected
        assert torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=False)["epoch"] == selected


def test_the_best_epoch_of_a_history_skips_flagged_epochs():
    history = [
        {"epoch": 0, "val/robust_acc": 0.2, "val/leaking": 0.0},
        {"epoch": 1, "val/robust_acc": 0.4, "val/leaking": 1.0},
        {"epoch": 2, "val/robust_acc": 0.3},
    ]
    assert best_epoch(history)["epoch"] == 2


def test_the_leak_probe_gives_the_same_figure_whatever_the_global_generator_holds():
    net, x, y = tiny_net(), torch.rand(64, 3, 8, 8), torch.randint(0, 10, (64,))
    defense = LayerwiseDefense(PGDTraining(eps=0.03, steps=1), eta=0.05)
    figures = []
    for state in (1, 2):
        torch.manual_seed(state)  # as AutoAttack or anything else run before the probe leaves it
        figures.append((leak_excess(defense, net, x, y, 10), label_leak(defense, net, x, y, 10, batch=32)))
    assert figures[0] == figures[1]
