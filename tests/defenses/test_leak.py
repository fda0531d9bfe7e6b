"""experiments/label_leak.py probes a trained checkpoint's own training forward."""

from __future__ import annotations

from helpers import experiment_script, quickstart_config

from ladlit.train import train

label_leak = experiment_script("label_leak")


def test_the_probe_reads_a_layerwise_checkpoint_and_counts_each_prediction_once(tmp_path):
    train(
        quickstart_config(
            tmp_path, "defense=lad", "defense.eta=0.001", "trainer.max_epochs=1", "trainer.limit_train_batches=2"
        )
    )
    result = label_leak.probe(str(tmp_path / "checkpoints" / "last.ckpt"), n=48, batch=16)
    assert set(result) == {"clean", "true_given_true", "true_given_shifted", "shifted_given_shifted"}
    assert all(0.0 <= v <= 1.0 for v in result.values())
    assert result["true_given_shifted"] + result["shifted_given_shifted"] <= 1.0  # one prediction per image
    assert all(abs(48 * v - round(48 * v)) < 1e-9 for v in result.values())  # counts over exactly 48 images
