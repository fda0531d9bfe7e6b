"""Shared fixtures: tiny models and batches, config composition, the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

import ladlit.config
from ladlit.models import CifarResNet

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SHARED_DATA = REPO.parent / "shared" / "data"


def tiny_net(seed: int = 0, channels: int = 3, num_classes: int = 10) -> CifarResNet:
    """Three basic blocks, two of them transitions; eval-ready in milliseconds."""
    torch.manual_seed(seed)
    return CifarResNet(
        num_classes=num_classes, mean=[0.5] * channels, std=[0.25] * channels, depth=8, widths=(8, 16, 32)
    )


@pytest.fixture
def net() -> CifarResNet:
    return tiny_net()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)


def compose_config(
    name: str, overrides: list[str] | tuple[str, ...] = (), output_dir: Path | None = None
) -> DictConfig:
    """The real config from conf/ with overrides, data from ../shared/data, runs writing to `output_dir`."""
    return ladlit.config.compose_config(
        name, [*overrides, f"data_dir={SHARED_DATA}"], output_dir or REPO / "outputs" / "tests"
    )


def quickstart_config(tmp_path: Path, *overrides: str) -> DictConfig:
    """The quickstart experiment (digits, tiny net, CPU), writing into tmp_path, CSV logging only."""
    return compose_config("train", ["experiment=quickstart", "logger=csv", *overrides], output_dir=tmp_path)


@pytest.fixture(scope="session")
def trained_digits_net():
    """A tiny net naturally trained on the digits for a few epochs, with 300 test examples."""
    import torch.nn.functional as F

    from ladlit.data import DigitsDataModule

    dm = DigitsDataModule(num_classes=10, mean=[0.3], std=[0.4], batch_size=64, val_size=0)
    dm.setup()
    net = tiny_net(channels=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x_train, y_train = dm.train_set.tensors
    x_train = x_train.float() / 255
    for _ in range(8):
        for idx in torch.randperm(len(y_train)).split(64):
            opt.zero_grad()
            F.cross_entropy(net(x_train[idx]), y_train[idx]).backward()
            opt.step()
    net.eval()
    x_test, y_test = dm.test_set.tensors
    return net, x_test[:300].float() / 255, y_test[:300]


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> Path:
    """A quickstart run directory trained once per session (1 epoch of 2 batches, 1 PGD step), for
    tests that evaluate a real checkpoint. Evaluations add to its record: check your own keys."""
    from ladlit.train import train

    run = tmp_path_factory.mktemp("quickstart_run")
    train(quickstart_config(run, "trainer.max_epochs=1", "train_attack_steps=1", "trainer.limit_train_batches=2"))
    return run
