"""The run record's shared rules: which epoch is the best one, and which config keys are bookkeeping."""

from __future__ import annotations

from helpers import REPO

from ladlit.records import best_epoch, evaluation_key, flatten_config, has_evaluation, key_in, write_json


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


def test_has_evaluation_reads_the_key_ladlit_eval_writes():
    record = {
        "evaluations": {
            evaluation_key("best.ckpt", "pgd20+cw", 8 / 255, 5000): {},
            evaluation_key("last.ckpt", "sanity", 8 / 255, 200): {},
            evaluation_key("best.ckpt", "eps_sweep", None, 5000): {},
        }
    }
    assert has_evaluation(record, "best.ckpt", "pgd20+cw", 5000) and has_evaluation(record, "best.ckpt", "pgd20+cw")
    assert not has_evaluation(record, "best.ckpt", "pgd20+cw", 1000)  # another example set
    assert not has_evaluation(record, "best.ckpt", "pgd20", 5000)  # a part of the attacks is not the whole
    assert not has_evaluation(record, "best.ckpt", "sanity")  # measured on last.ckpt only
    assert has_evaluation(record, "best.ckpt", "eps_sweep", 5000)
    assert not has_evaluation(None, "best.ckpt", "clean") and not has_evaluation({}, "best.ckpt", "clean")


def test_the_study_skips_exactly_what_its_committed_record_holds(tmp_path):
    import sys

    sys.path.insert(0, str(REPO / "experiments"))
    import cpu_study

    (tmp_path / "checkpoints").mkdir()
    write_json(
        tmp_path / "checkpoints" / "metrics.json",
        {"evaluations": {evaluation_key("best.ckpt", "pgd20+cw", 8 / 255, 5000): {}}},
    )
    assert cpu_study.evaluated(tmp_path, "best", "pgd20,cw", 5000)
    assert not cpu_study.evaluated(tmp_path, "last", "pgd20,cw", 5000)
    assert not cpu_study.evaluated(tmp_path, "best", "autoattack", 5000)
    assert not cpu_study.evaluated(tmp_path / "nowhere", "best", "pgd20,cw", 5000)
