"""From training to the cross-run table: train two tiny runs, evaluate them, report."""

from __future__ import annotations

import json

from ladlit.eval import evaluate_checkpoint
from ladlit.report import main as report_main
from ladlit.train import train

from conftest import compose_config, quickstart_config


def test_eval_and_report_on_two_tiny_runs(tmp_path, capsys):
    runs = tmp_path / "runs"
    for defense in ("none", "lad_sm"):
        run_dir = runs / defense
        short = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "dataset.test_subset=64"]
        train(quickstart_config(run_dir, f"defense={defense}", "train_attack_steps=2", *short))
        sanity = 16 if defense == "none" else 0  # the checklist is tested in test_sanity; once here is enough
        cfg = compose_config("eval", [f"ckpt={run_dir}", "attack=[fgsm,pgd20]", "n_examples=48", f"sanity_examples={sanity}", "eps_sweep=[0.0,0.1,0.2]"])
        result = evaluate_checkpoint(cfg)
        assert result["eps"] == 0.1  # the run's own eps
        assert result["accuracy"]["pgd20"] <= result["accuracy"]["clean"]
        assert set(result["eps_sweep"]) == {0.0, 0.1, 0.2}
        assert len(result.get("sanity", [])) == (7 if sanity else 0)
        assert json.loads((run_dir / "checkpoints" / "metrics.json").read_text())["n_examples"] == 48

    assert report_main([str(runs)]) == 0
    table = (runs / "report.md").read_text()
    assert "| none | - |" in table and "| pgd | strang_marchuk |" in table
    assert (runs / "report.csv").read_text().count("\n") == 3
    for png in ("eps_sweep.png", "attacks.png"):
        assert (runs / png).read_bytes()[:4] == b"\x89PNG"
