"""Evaluations in the run's W&B, offline: what `ladlit.eval` and `ladlit.report --wandb` leave in
the offline runs' files, read back with wandb's own reader (`wandb leet inspect`), never by
trusting that a call was made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PGD, compose_config, lad, quickstart_config, run_cli, write_run

from ladlit.eval import evaluate_checkpoint


@pytest.fixture
def offline_wandb(tmp_path_factory, monkeypatch):
    """No key, no network: W&B writes offline, and its own files (cache, staging) stay in tmp."""
    home = tmp_path_factory.mktemp("wandb_home")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"}.items():
        monkeypatch.setenv(key, value)
    for key in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(key, str(home / key.lower()))
    yield
    import wandb

    wandb.finish()  # nothing left open for the next test


def inspect(run: Path, *options: str) -> str:
    command = [sys.executable, "-m", "wandb", "leet", "inspect", str(run), "--json", *options]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def offline_runs(folder: Path) -> list[Path]:
    """The offline W&B runs under folder/wandb, oldest first."""
    return sorted(p for p in folder.glob("wandb/offline-run-*") if list(p.glob("*.wandb")))


def read_run(run: Path) -> dict:
    """An offline run as wandb's reader sums it up: id, name, tags, config, summary."""
    return {**json.loads(inspect(run, "--summary")), "dir": run}


def records(run: Path) -> list[dict]:
    """The records of an offline run's transaction log, in order."""
    return [json.loads(line) for line in inspect(run).splitlines()]


def line_plots(logged: list[dict]) -> dict[str, dict]:
    """The line plots a run's records declare, by key: the columns they draw (x, y, stroke)."""
    updates = [r["config"].get("update", {}) for r in logged if r["type"] == "config"]
    charts = {k.removeprefix("_wandb.visualize."): v["panel_config"] for u in updates for k, v in u.items()}
    return {k: c["fieldSettings"] for k, c in charts.items() if c.get("panelDefId") == "wandb/line/v0"}


def table(run: dict, key: str) -> list[dict]:
    """The rows of the run's table `key`, from the file its summary points to."""
    ref = run["summary"][key]
    assert ref["_type"] == "table-file", ref
    data = json.loads((run["dir"] / "files" / ref["path"]).read_text())
    return [dict(zip(data["columns"], row)) for row in data["data"]]


def evaluate(run_dir: Path, *overrides: str) -> dict:
    return evaluate_checkpoint(
        compose_config("eval", [f"ckpt={run_dir}", "n_examples=16", "sanity_examples=0", "eps_sweep=[]", *overrides])
    )


def test_an_evaluation_lands_in_the_training_runs_own_wandb_run(tmp_path, offline_wandb):
    import wandb

    from ladlit.train import train

    short = ["trainer.max_epochs=1", "train_attack_steps=1", "trainer.limit_train_batches=2", "dataset.val_size=32"]
    short += ["dataset.test_subset=32", "callbacks.label_leak=null"]
    train(quickstart_config(tmp_path, "logger=wandb", *short))
    wandb.finish()  # where the training process ends
    entries = evaluate(tmp_path, "attack=[fgsm,pgd20]", "eps_sweep=[0,0.1]", "layer_profile=true")
    training, evaluation = map(read_run, offline_runs(tmp_path))
    # one W&B run: `wandb sync <run>/wandb` appends the evaluation to training's curves
    assert evaluation["run_id"] == training["run_id"] and "val/robust_acc" in training["summary"]
    accuracy, sweep, profile = (e for k, e in entries.items() if k.split(" | ")[1] != "sanity")
    name = "eval/best_fgsm_pgd20_eps25_5_255_n16"  # the evaluation key's names, W&B-safe
    for attack in ("clean", "fgsm", "pgd20", "worst"):
        assert evaluation["summary"][f"{name}/{attack}"] == pytest.approx(accuracy["accuracy"][attack])
    points = table(evaluation, "eval/best_eps_sweep_n16_table")
    assert [(p["eps"], p["accuracy"]) for p in points] == [
        (0.0, sweep["eps_sweep"][0.0]),
        (0.1, sweep["eps_sweep"][0.1]),
    ]
    rows = table(evaluation, "eval/best_layer_profile_n16_table")
    assert {(r["block"], str(r["r"])): r["accuracy"] for r in rows} == {
        (block, r): acc for block, accs in profile["layer_profile"].items() for r, acc in accs.items()
    }
    assert line_plots(records(evaluation["dir"])) == {
        "eval/best_eps_sweep_n16": {"x": "eps_255", "y": "accuracy", "stroke": None},
        "eval/best_layer_profile_n16": {"x": "r", "y": "accuracy", "stroke": "block"},
    }
    evaluate(tmp_path, "attack=[fgsm]", "logger=csv")  # a logger without W&B: nothing sent
    assert len(offline_runs(tmp_path)) == 2


def test_a_run_trained_without_wandb_gets_none_unless_asked_then_its_own(quickstart_run, offline_wandb):
    evaluate(quickstart_run, "attack=[fgsm]")
    assert not (quickstart_run / "wandb").exists()
    entries = evaluate(quickstart_run, "attack=[fgsm]", "logger=wandb", "sanity_examples=8")
    (run,) = map(read_run, offline_runs(quickstart_run))
    assert run["name"] == "quickstart-pgd" and "digits" in run["tags"]
    assert run["summary"]["eval/best_fgsm_eps25_5_255_n16/worst"] == pytest.approx(
        entries["best.ckpt | fgsm | eps=25.5/255 | n=16"]["accuracy"]["worst"]
    )
    checks = entries["best.ckpt | sanity | eps=25.5/255 | n=8"]["sanity"]
    rows = table(run, "eval/best_sanity_eps25_5_255_n8")
    assert [(r["check"], r["passed"]) for r in rows] == [(c["name"], c["passed"]) for c in checks]
    assert run["summary"]["eval/best_sanity_eps25_5_255_n8/failed"] == sum(not c["passed"] for c in checks)


def test_the_report_puts_one_table_of_the_sweeps_runs_into_its_group(tmp_path, offline_wandb, monkeypatch):
    sweep = tmp_path / "2026-12-04_10-00-00_000000"  # a multirun's directory: its runs' W&B group
    for seed, eta in [(0, None), (1, None), (0, 0.001)]:
        history = [{"epoch": 0, "val/robust_acc": 0.2 + seed / 10}, {"epoch": 1, "val/robust_acc": 0.25}]
        defense = PGD if eta is None else lad(eta)
        write_run(sweep, f"{seed}_{eta}", seed, defense, clean=0.6, pgd20=0.3 + seed / 100, history=history)
    code, printed = run_cli("report", [str(sweep), "--wandb"], monkeypatch)
    assert code == 0, printed
    (folder,) = offline_runs(sweep)
    assert next(r["run"] for r in records(folder) if r["type"] == "run")["run_group"] == sweep.name
    run = read_run(folder)
    rows = {(r["method"], r["seed"]): r for r in table(run, "report/runs")}
    assert set(rows) == {("pgd", 0), ("pgd", 1), ("pgd+lad", 0)}
    assert rows["pgd", 1]["best val/robust_acc"] == pytest.approx(0.3)
    assert rows["pgd", 1]["pgd20 (best.ckpt, n=5000, eps=7.65/255)"] == pytest.approx(0.31)
    assert rows["pgd+lad", 0]["lad.eta"] == 0.001
    # and the rows the report writes: PGD-AT's two seeds averaged into one
    settings = {(r["defense"], r["n"]): r for r in table(run, "report/settings")}
    pgd = next(r for (defense, n), r in settings.items() if defense.startswith("pgd ") or defense == "pgd")
    assert pgd["seeds"] == 2 and pgd["pgd20 mean"] == pytest.approx(0.305)


def test_each_run_trained_in_one_process_gets_a_w_and_b_run_of_its_own(tmp_path, offline_wandb):
    """A sequential multirun trains its jobs one after another in one process."""
    from ladlit.train import train
    from ladlit.wandb_results import stored_run_id

    short = ("logger=wandb", "trainer.max_epochs=1", "train_attack_steps=1", "trainer.limit_train_batches=2")
    for job in ("a", "b"):
        train(quickstart_config(tmp_path / job, *short))
    assert stored_run_id(tmp_path / "a") != stored_run_id(tmp_path / "b")
    assert all(len(offline_runs(tmp_path / job)) == 1 for job in ("a", "b"))
