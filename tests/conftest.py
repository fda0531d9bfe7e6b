"""Fixtures the tests share: tiny models and batches, trained runs (session-scoped: trained once
per test process). Plain helpers are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import quickstart_config, tiny_net

from ladlit.models import CifarResNet


@pytest.fixture
def net() -> CifarResNet:
    return tiny_net()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)


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
def trained_quickstart_run(tmp_path_factory) -> Path:
    """A quickstart run directory trained once per test process (1 epoch of 2 batches, 1 PGD step)."""
    from ladlit.train import train

    run = tmp_path_factory.mktemp("quickstart_run")
    train(quickstart_config(run, "trainer.max_epochs=1", "train_attack_steps=1", "trainer.limit_train_batches=2"))
    return run


@pytest.fixture
def quickstart_run(trained_quickstart_run, tmp_path) -> Path:
    """A copy of the session's trained quickstart run for one test to evaluate and write into."""
    import shutil

    return Path(shutil.copytree(trained_quickstart_run, tmp_path / "quickstart_run"))


# pytest-xdist (`make test`) hands out whole files in collection order; the longest go first so
# that both workers finish together instead of one running a long file alone at the end.
LONGEST_FIRST = (  # by their summed --durations, 2026-12-02: about 45 s (first) down to 20 s (last)
    "test_compile.py",
    "test_launchers.py",
    "test_train.py",
    "experiments/test_gpu_check.py",
    "attacks/test_autoattack_reference.py",
    "attacks/test_attacks.py",
    "defenses/test_layerwise.py",
    "test_locks.py",
    "test_configs.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    tests = Path(__file__).parent
    items.sort(
        key=lambda item: rank.get(item.path.relative_to(tests).as_posix(), len(rank))
    )  # stable: order within a file kept
