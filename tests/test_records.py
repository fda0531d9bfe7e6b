"""The run record's shared rules: which epoch is the best one, and which config keys are bookkeeping."""

from __future__ import annotations

from ladlit.records import best_epoch, flatten_config, key_in


def test_the_best_epoch_is_the_first_with_the_highest_robust_validation_accuracy():
    history = [
        {"epoch": 0, "val/robust_acc": 0.20},
        {"epoch": 1, "train/loss": 2.0},  # an epoch without validation never wins
        {"epoch": 2, "val/robust_acc": 0.31},
        {"epoch": 3, "val/robust_acc": 0.31},  # a tie keeps the earlier checkpoint, as ModelCheckpoint does
        {"epoch": 4, "val/robust_acc": 0.25},
    ]
    assert best_epoch(history)["epoch"] == 2
    assert best_epoch([{"epoch": 0, "train/loss": 2.3}]) is None


def test_config_keys_flatten_to_dotted_paths_and_match_by_prefix():
    config = {"trainer": {"devices": 2, "max_epochs": 10}, "seed": 0, "speed": {}}
    assert dict(flatten_config(config)) == {"trainer.devices": 2, "trainer.max_epochs": 10, "seed": 0}
    assert key_in("trainer.devices", ["trainer.devices"]) and key_in("logger.wandb.project", ["logger"])
    assert not key_in("trainer.devices_extra", ["trainer.devices"])
