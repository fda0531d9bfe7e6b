"""What users of the command line rely on: installed commands, progress in logs, data found from
any working directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, compose_config, run_cli


@pytest.mark.parametrize("tool", ["train", "eval", "report"])
def test_console_scripts_are_installed_and_answer_help(tool, monkeypatch):
    script = Path(sys.executable).parent / f"ladlit-{tool}"
    assert script.is_file(), f"ladlit-{tool} missing: pip install -e . installs it"
    assert f"from ladlit.{tool} import main" in script.read_text()
    code, printed = run_cli(tool, ["--help"], monkeypatch)
    assert code == 0 and ("Powered by Hydra" in printed or "usage" in printed)


def test_an_installed_command_refuses_a_bad_value_as_its_own_process_with_exit_2(tmp_path):
    """The interpreter's own exit status and stderr (the in-process tests see `main`'s)."""
    run = tmp_path / "run"
    command = [str(Path(sys.executable).parent / "ladlit-train"), "experiment=quickstart", "defense.eps=3"]
    result = subprocess.run([*command, f"hydra.run.dir={run}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "defense.eps must be in [0, 1]" in result.stderr
    assert "Traceback" not in result.stderr and not run.exists()


def test_training_prints_a_plain_line_per_epoch_into_train_log(tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = ["experiment=quickstart", "trainer.max_epochs=2", "train_attack_steps=1", f"hydra.run.dir={run}"]
    code, printed = run_cli("train", args, monkeypatch)  # stdout is not a terminal
    assert code == 0, printed[-2000:]
    lines = [line for line in (run / "train.log").read_text().splitlines() if " - epoch " in line]
    assert [line.split(" - ")[1].split()[1] for line in lines] == ["1/2", "2/2"]
    assert all("train/loss" in line and "val/acc_pgd20" in line and "left" in line for line in lines)
    assert "logging interval" not in printed  # Lightning's small-dataset warning is silenced


def test_data_dir_is_the_same_from_any_working_directory(tmp_path, monkeypatch):
    here = compose_config("train", ["dataset=cifar10_jpeg"]).dataset.path
    monkeypatch.chdir(tmp_path)
    import ladlit.config

    elsewhere = ladlit.config.compose_config("train", ["dataset=cifar10_jpeg"]).dataset.path
    default = ladlit.config.compose_config("train", []).data_dir
    assert Path(elsewhere).is_absolute() and Path(default) == (REPO.parent / "shared" / "data").resolve()
    assert Path(here).parent.resolve() == Path(default).resolve()
