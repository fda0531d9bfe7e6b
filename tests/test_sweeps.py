"""`experiment=eta_search`: an Optuna search over eta that optimises validation, prunes trials
worse than a finished sibling (and leaking ones), summarises every trial, and resumes from its
storage after being interrupted. Real sweeps on the quickstart data, run in this process."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import run_cli

from ladlit.sweeps import PruneAgainstSiblings, outcome

optuna = pytest.importorskip("optuna")

QUICK = [
    "experiment=eta_search",
    "dataset=digits",
    "model=tiny",
    "trainer=cpu",
    "eps=0.1",
    "trainer.max_epochs=2",
    "train_attack_steps=1",
    "callbacks.sweep_pruner.min_epochs=1",
    "callbacks.sweep_pruner.margin=-1",  # prune every trial behind a finished one: pruning is exercised
]


def sweep(sweep_dir, trials: int, monkeypatch) -> str:
    """`python -m ladlit.train -m ...` of the search; what it printed."""
    args = ["-m", *QUICK, f"hydra.sweeper.n_trials={trials}", f"hydra.sweep.dir={sweep_dir}"]
    code, printed = run_cli("train", args, monkeypatch)
    assert code == 0, printed[-3000:]
    return printed


def records(sweep_dir):
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")}


@pytest.mark.timeout(900)
def test_a_search_optimises_validation_prunes_summarises_and_resumes(tmp_path, monkeypatch):
    sweep_dir = tmp_path / "search"
    first = sweep(sweep_dir, 3, monkeypatch)
    runs = records(sweep_dir)
    assert len(runs) == 3
    finished = [r for r in runs.values() if not r.get("pruned")]
    pruned = [r for r in runs.values() if r.get("pruned")]
    assert len(finished) == 1 and len(pruned) == 2  # the first finishes; the later ones stop at their first validation
    assert all(len(r["history"]) == 1 and r["pruned"].startswith("worse") for r in pruned)
    # what Optuna was told is the finished trial's best validation number, never a test number;
    # the stopped trials failed, so neither Optuna's best nor its sampler reads their truncated values
    study = optuna.load_study(study_name="eta_search", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL", "FAIL"] and study.best_value == finished[0]["val/best_robust_acc"]
    assert all(1e-4 <= t.params["defense.eta"] <= 1e-2 for t in study.trials)
    summary = (sweep_dir / "eta_search.md").read_text()
    assert (
        "Best: eta = " in summary and summary.count("| pruned: worse") == 2 and (sweep_dir / "eta_search.png").is_file()
    )
    assert "Best: eta" in first
    # the summary and Optuna's own results file name the same best trial
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert f"Best: eta = {results['best_params']['defense.eta']} " in summary
    assert f"robust validation {100 * results['best_value']:.1f} %" in summary

    sweep(sweep_dir, 1, monkeypatch)  # resumed from the storage in the sweep directory
    study = optuna.load_study(study_name="eta_search", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert len(study.trials) == 4 and len(records(sweep_dir)) == 4
    etas = [t.params["defense.eta"] for t in study.trials]
    assert len(set(etas)) == 4  # the resumed sampler does not repeat the first trials


def test_a_leaking_trial_is_pruned_at_once_and_counted_as_leaking():
    from types import SimpleNamespace

    import torch

    pruner = PruneAgainstSiblings(min_epochs=5)
    trainer = SimpleNamespace(
        sanity_checking=False,
        current_epoch=0,
        callback_metrics={
            "val/label_leak": torch.tensor(0.4),
            "val/leaking": torch.tensor(1.0),
            "val/robust_acc": torch.tensor(0.3),
        },
        datamodule=SimpleNamespace(num_classes=10),
        should_stop=False,
        default_root_dir=".",
        callbacks=[],
    )
    pruner.on_validation_end(trainer, None)
    assert trainer.should_stop and pruner.pruned.startswith("leaking")
    record = {"pruned": pruner.pruned, "history": [{"epoch": 0, "val/robust_acc": 0.3, "val/leaking": 1.0}]}
    assert outcome(record, 10) == "leaking"
    assert outcome({"history": [{"epoch": 0, "val/robust_acc": 0.05}]}, 10) == "collapsed"
    assert outcome({"history": [{"epoch": 0, "val/robust_acc": 0.3}]}, 10) == "finished"


def test_the_report_leaves_pruned_trials_out_with_a_note(tmp_path):
    from helpers import PGD, write_run

    from ladlit.reporting.aggregate import find_runs

    write_run(tmp_path, "kept", 0, PGD, 0.5, 0.3)
    write_run(tmp_path, "cut", 1, PGD, 0.4, 0.2, pruned="worse: 0.2 by epoch 1")
    notes: list[str] = []
    assert [r.path.name for r in find_runs([tmp_path], notes)] == ["kept"]
    assert any("pruned by its sweep (worse" in n for n in notes)
