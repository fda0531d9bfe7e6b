"""A run directory is never silently reused or overwritten; a moved or copied run resumes as itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import quickstart_config, run_cli

from ladlit.errors import ConfigError
from ladlit.resume import discard_empty_run_dir
from ladlit.train import train

SHORT = [
    "train_attack_steps=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "dataset.test_subset=32",
]


def _files(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.suffix != ".log"}


@pytest.fixture
def finished_run(tmp_path):
    run = tmp_path / "run"
    train(quickstart_config(run, "trainer.max_epochs=2", *SHORT))
    return run


def test_rerun_with_another_config_stops_naming_the_keys_and_touches_nothing(finished_run):
    (finished_run / "metrics.json").unlink()  # as if it had been killed before the end
    before = _files(finished_run)
    with pytest.raises(
        ConfigError,
        match=r"defense._target_: 'ladlit.defenses.PGDTraining' -> 'ladlit.defenses.TRADES'.*force_resume=true",
    ):
        train(quickstart_config(finished_run, "trainer.max_epochs=3", "defense=trades", *SHORT))
    with pytest.raises(ConfigError, match=r"eps: 0.1 -> 0.05"):
        train(quickstart_config(finished_run, "trainer.max_epochs=3", "eps=0.05", *SHORT))
    assert _files(finished_run) == before


def test_the_cli_says_it_in_one_message(finished_run, monkeypatch):
    args = ["experiment=quickstart", "defense=trades", *SHORT, f"hydra.run.dir={finished_run}"]
    code, printed = run_cli("train", args, monkeypatch)
    assert code == 2 and "was trained with another config" in printed and "Traceback" not in printed


def test_a_finished_run_is_extended_only_to_more_epochs_and_its_results_kept(finished_run):
    first = json.loads((finished_run / "metrics.json").read_text())
    with pytest.raises(ConfigError, match="finished run .2 epochs"):
        train(quickstart_config(finished_run, "trainer.max_epochs=2", *SHORT))
    train(quickstart_config(finished_run, "trainer.max_epochs=3", *SHORT))
    assert json.loads((finished_run / "metrics.2epochs.json").read_text()) == first
    assert json.loads((finished_run / "metrics.json").read_text())["epochs"] == 3


def test_force_resume_accepts_a_changed_config(finished_run):
    (finished_run / "metrics.json").unlink()
    train(quickstart_config(finished_run, "trainer.max_epochs=3", "optimizer.lr=0.01", "force_resume=true", *SHORT))
    assert torch.load(finished_run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 2


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_run_resumes_with_its_own_checkpoints(finished_run, tmp_path, how):
    target = tmp_path / "elsewhere"
    (shutil.move if how == "move" else shutil.copytree)(finished_run, target)
    own_best = target / "checkpoints" / "best.ckpt"
    metrics = train(quickstart_config(target, "trainer.max_epochs=3", *SHORT))
    record = json.loads((target / "metrics.json").read_text())
    assert record["best_checkpoint"] == "checkpoints/best.ckpt" and own_best.is_file()
    state = torch.load(target / "checkpoints" / "last.ckpt", weights_only=False)
    (callback,) = [v for k, v in state["callbacks"].items() if "'monitor': 'val/robust_acc'" in k]
    assert callback["best_model_path"] == "best.ckpt" and callback["best_model_score"] is not None
    assert metrics["test/acc_clean"] >= 0.0


def test_an_early_config_error_leaves_no_run_directory(tmp_path, monkeypatch):
    run = tmp_path / "new-run"
    code, printed = run_cli("train", ["experiment=quickstart", "defense.eps=3", f"hydra.run.dir={run}"], monkeypatch)
    assert code == 2 and "defense.eps must be in [0, 1]" in printed
    assert not run.exists()


def test_a_failed_start_removes_the_folder_hydra_made_for_it_and_nothing_above(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("quickstart", "cpu_study", "kept"):  # what Hydra makes at a start: outputs/<name>/<time>/
        (tmp_path / "outputs" / name / "2026-12-05_22-51-00_000000" / ".hydra").mkdir(parents=True)
    (tmp_path / "outputs" / "kept" / "notes.txt").write_text("mine")
    discard_empty_run_dir(Path("outputs/quickstart/2026-12-05_22-51-00_000000"))
    discard_empty_run_dir(tmp_path / "outputs" / "kept" / "2026-12-05_22-51-00_000000")
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["cpu_study", "kept"]
    (tmp_path / "outputs" / "kept" / "notes.txt").unlink()
    (tmp_path / "outputs" / "kept").rmdir()
    discard_empty_run_dir(tmp_path / "outputs" / "cpu_study" / "2026-12-05_22-51-00_000000")
    assert (tmp_path / "outputs").is_dir() and not any((tmp_path / "outputs").iterdir())  # outputs/ itself stays


def test_a_failed_start_does_not_follow_a_linked_outputs_folder_nor_remove_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "data" / "runs" / "quickstart" / "t0").mkdir(parents=True)
    (tmp_path / "outputs").symlink_to(tmp_path / "data" / "runs")  # outputs/ kept on another disk, say
    monkeypatch.chdir(tmp_path)
    discard_empty_run_dir(Path("outputs/quickstart/t0"))
    assert (tmp_path / "outputs").is_symlink() and (tmp_path / "data" / "runs").is_dir()
    (tmp_path / "work" / "t0").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    discard_empty_run_dir(Path("t0"))  # hydra.run.dir=t0: the run's parent is the working directory
    assert (tmp_path / "work").is_dir()


def test_resume_and_report_share_one_list_of_bookkeeping_keys():
    """What resuming may change is what the report pools over, up to a few keys each names: one
    list, so the two cannot drift apart again."""
    from ladlit.records import BOOKKEEPING
    from ladlit.reporting.aggregate import IGNORED
    from ladlit.resume import RESUMABLE, check_same_config

    assert set(RESUMABLE) - set(BOOKKEEPING) == {"trainer.max_epochs", "choices"}
    assert set(IGNORED) - set(BOOKKEEPING) == {"seed", "dataset.seed", "choices.defense"}  # dataset.seed is ${seed}
    stored = {"dataset": {"eval_batch_size": 256, "batch_size": 128}, "speed": {"channels_last": False}}
    check_same_config(
        stored, {"dataset": {"eval_batch_size": 512, "batch_size": 128}, "speed": {"channels_last": True}}, Path("run")
    )
    with pytest.raises(ConfigError, match="dataset.batch_size: 128 -> 64"):
        check_same_config(stored, {**stored, "dataset": {"eval_batch_size": 256, "batch_size": 64}}, Path("run"))


def test_a_refused_start_in_a_folder_with_other_files_removes_only_what_it_wrote(tmp_path, monkeypatch):
    run = tmp_path / "notes-and-runs"
    run.mkdir()
    (run / "notes.txt").write_text("the user's own file")
    code, printed = run_cli("train", ["experiment=quickstart", "defense.eps=3", f"hydra.run.dir={run}"], monkeypatch)
    assert code == 2 and "defense.eps must be in [0, 1]" in printed
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # Hydra's train.log and the lock are gone
