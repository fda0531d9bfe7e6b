"""What users of the command line rely on: installed commands, progress in logs, data found from
any working directory, evaluations that add up, data prepared once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, compose_config, quickstart_config
from ladlit.eval import evaluate_checkpoint
from ladlit.train import train


@pytest.mark.parametrize("command", ["ladlit-train", "ladlit-eval", "ladlit-report"])
def test_console_scripts_are_installed(command):
    script = Path(sys.executable).parent / command
    assert script.is_file(), f"{command} missing: pip install -e . installs it"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and ("Powered by Hydra" in result.stdout or "usage" in result.stdout)


def test_redirected_training_prints_a_plain_line_per_epoch_into_train_log(tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "ladlit.train",
        "experiment=quickstart",
        "trainer.max_epochs=2",
        "train_attack_steps=1",
        f"hydra.run.dir={run}",
    ]
    result = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=300
    )  # stdout is a pipe, not a terminal
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in (run / "train.log").read_text().splitlines() if " - epoch " in line]
    assert [line.split(" - ")[1].split()[1] for line in lines] == ["1/2", "2/2"]
    assert all("train/loss" in line and "val/acc_pgd20" in line and "left" in line for line in lines)
    assert "logging interval" not in result.stderr  # Lightning's small-dataset warning is silenced


def test_data_dir_is_the_same_from_any_working_directory(tmp_path, monkeypatch):
    here = compose_config("train", ["dataset=cifar10_jpeg"]).dataset.path
    monkeypatch.chdir(tmp_path)
    import ladlit.config

    elsewhere = ladlit.config.compose_config("train", ["dataset=cifar10_jpeg"]).dataset.path
    default = ladlit.config.compose_config("train", []).data_dir
    assert Path(elsewhere).is_absolute() and Path(default) == (REPO.parent / "shared" / "data").resolve()
    assert Path(here).parent.resolve() == Path(default).resolve()


def test_evaluations_add_up_and_never_erase_each_other(tmp_path):
    train(quickstart_config(tmp_path, "trainer.max_epochs=1", "train_attack_steps=1", "trainer.limit_train_batches=2"))

    def evaluate(*overrides):
        return evaluate_checkpoint(
            compose_config("eval", [f"ckpt={tmp_path}", "sanity_examples=0", "eps_sweep=[]", *overrides])
        )

    evaluate("attack=[fgsm,cw]", "n_examples=40", "eps_sweep=[0.0,0.1]")
    evaluate("attack=[pgd20]", "n_examples=40")
    evaluate("attack=[pgd20]", "n_examples=40", "eps=0.05")
    evaluate("attack=[pgd20]", "n_examples=40")  # measured again: replaces only its own entry
    record = json.loads((tmp_path / "checkpoints" / "metrics.json").read_text())["evaluations"]
    kinds = sorted(k.split(" | ")[1:] for k in record)
    assert kinds == [
        ["eps_sweep", "eps=-", "n=40"],
        ["fgsm+cw", "eps=25.5/255", "n=40"],
        ["pgd20", "eps=12.75/255", "n=40"],
        ["pgd20", "eps=25.5/255", "n=40"],
    ]
    table = (tmp_path / "checkpoints" / "metrics.md").read_text()
    assert "| best.ckpt | cw | 25.5/255 | 40 |" in table and "| best.ckpt | pgd20 | 12.75/255 | 40 |" in table
    (two_attacks,) = [e for k, e in record.items() if "| fgsm+cw |" in k]
    accuracy = two_attacks["accuracy"]
    assert two_attacks["worst_of"] == ["fgsm", "cw"] and accuracy["worst"] <= min(accuracy["fgsm"], accuracy["cw"])
    assert "| best.ckpt | worst(fgsm+cw) | 25.5/255 | 40 |" in table
    fingerprints = {
        (e["examples"]["split"], e["examples"]["first"], e["examples"]["sha1"])
        for e in record.values()
        if "examples" in e
    }
    assert len(fingerprints) == 1 and next(iter(fingerprints))[:2] == ("test", 40)  # the same 40 test images each time


def test_archive_is_decoded_once_in_prepare_data(tmp_path, monkeypatch):
    from test_data import _make_tarball

    import ladlit.data.sources as sources
    from ladlit.data import JpegTarballDataModule

    _make_tarball(tmp_path / "toy.tar.gz")
    make = lambda: JpegTarballDataModule(
        path=str(tmp_path / "toy.tar.gz"),
        cache_dir=str(tmp_path / "cache"),
        classes=["airplane", "cat"],
        num_classes=2,
        mean=[0.5] * 3,
        std=[0.5] * 3,
    )
    make().prepare_data()  # what Lightning runs once per node

    def no_second_decode(*args, **kwargs):
        raise AssertionError("decoded again in setup")

    monkeypatch.setattr(sources, "decode_members", no_second_decode)
    dm = make()  # another rank
    dm.setup("fit")
    assert len(dm.train_set) == 6
