"""Bad input gives one clear message naming what to fix, before any training starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, compose_config, tiny_net
from ladlit.checkpoints import load_checkpoint, load_weights
from ladlit.config import validate_config
from ladlit.data import JpegTarballDataModule, TorchvisionDataModule
from ladlit.errors import CheckpointError, ConfigError, DataNotFoundError


@pytest.mark.parametrize(
    "override,message",
    [
        ("defense.eps=1.5", "defense.eps must be in \\[0, 1\\]"),
        ("defense.alpha=-0.1", "defense.alpha must be in \\[0, 1\\]"),
        ("defense.steps=0", "defense.steps must be an integer >= 1"),
        ("defense.beta=-1", "defense.beta must be >= 0"),
        ("attack.pgd20.steps=0", "attack.pgd20.steps must be an integer >= 1"),
        ("eps=2", "eps must be in \\[0, 1\\]"),
    ],
)
def test_out_of_range_values_name_their_key(override, message):
    defense = "defense=trades" if "beta" in override else "defense=pgd"
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config("train", [defense, override]))


def test_cli_reports_bad_value_without_traceback(tmp_path):
    cmd = [sys.executable, "-m", "ladlit.train", "experiment=quickstart", "defense.eps=3", f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "defense.eps must be in [0, 1]" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_unknown_option_is_hydras_message(tmp_path):
    cmd = [sys.executable, "-m", "ladlit.train", "defense=nonsense", f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Could not find 'defense/nonsense'" in result.stderr


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_mismatched_checkpoint_lists_the_keys():
    state = tiny_net(num_classes=5).state_dict()
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_weights(tiny_net(num_classes=10), state, source="run.ckpt")


def test_cli_eval_of_missing_checkpoint(tmp_path):
    cmd = [sys.executable, "-m", "ladlit.eval", f"ckpt={tmp_path}/nope.ckpt"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written where it was run (no Hydra eval.log)


def test_missing_datasets_say_how_to_get_them(tmp_path):
    with pytest.raises(DataNotFoundError, match="dataset.download=true"):
        TorchvisionDataModule(name="cifar10", root=str(tmp_path), num_classes=10, mean=[0] * 3, std=[1] * 3).load()
    with pytest.raises(DataNotFoundError, match="Set dataset.path"):
        JpegTarballDataModule(path=str(tmp_path / "x.tar.gz"), num_classes=10, mean=[0] * 3, std=[1] * 3).load()
