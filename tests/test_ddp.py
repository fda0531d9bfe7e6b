"""Data-parallel training through Lightning equals one process on the same global batch."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from helpers import quickstart_config
from torch import nn

from ladlit.train import train

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`

COMMON = [
    "defense=none",  # deterministic: no random starts, so both runs do the same arithmetic
    "dataset.crop_padding=0",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.accelerator=cpu",
]


class FreezeBatchNormStatistics(pl.Callback):
    """Per-process batch statistics differ from global ones, and SyncBatchNorm needs GPUs; with
    BatchNorm on its running statistics both runs compute the same function (affine weights
    still train), so what is compared is DDP's gradient averaging and data split."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        for module in pl_module.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()


@pytest.mark.timeout(600)
def test_two_gloo_processes_match_one_process_on_the_global_batch(tmp_path):
    freeze = [FreezeBatchNormStatistics()]
    train(quickstart_config(tmp_path / "single", *COMMON, "dataset.batch_size=64"), extra_callbacks=freeze)
    ddp_overrides = [
        "dataset.batch_size=32",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp_fork",  # forked: the ranks inherit the imports (spawned ones pay 8 s each)
    ]
    train(quickstart_config(tmp_path / "ddp", *COMMON, *ddp_overrides), extra_callbacks=freeze)
    single, ddp = (
        torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=False) for d in ("single", "ddp")
    )
    assert single["global_step"] == ddp["global_step"] == 3
    for key, value in single["state_dict"].items():
        torch.testing.assert_close(ddp["state_dict"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    assert not torch.equal(single["state_dict"]["net.stem.0.weight"], quickstart_config_initial_stem(tmp_path))


def quickstart_config_initial_stem(tmp_path):
    """The stem's weights before training, to show the runs moved them (the test is not vacuous)."""
    from hydra.utils import instantiate

    torch.manual_seed(0)
    return instantiate(quickstart_config(tmp_path / "init", *COMMON).model).stem[0].weight.detach()


@pytest.mark.timeout(600)
def test_ddp_trains_with_lad_and_gathers_validation_over_all_ranks(tmp_path):
    """Two processes, a LAD defense, validation sharded across them: the logged validation accuracy
    is the whole validation set's (checked against one process evaluating the saved weights)."""
    import json

    from hydra.utils import instantiate

    from ladlit.checkpoints import net_state_dict

    overrides = [
        *COMMON,
        "defense=lad",
        "defense.eta=0.01",
        "train_attack_steps=1",
        "trainer.limit_val_batches=null",
        "attack=[]",
    ]
    ddp = [
        "dataset.batch_size=32",
        "dataset.eval_batch_size=50",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp_fork",  # forked: the ranks inherit the imports (spawned ones pay 8 s each)
    ]
    cfg = quickstart_config(tmp_path, *overrides, *ddp)
    train(cfg)
    logged = json.loads((tmp_path / "metrics.json").read_text())["history"][-1]["val/acc_clean"]
    net = instantiate(cfg.model)
    net.load_state_dict(net_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)))
    dm = instantiate(cfg.dataset)
    dm.setup()
    x, y = dm.val_set.tensors
    with torch.no_grad():
        whole = (net.eval()(x.float() / 255).argmax(1) == y).float().mean().item()
    assert len(y) == 200 and logged == pytest.approx(whole, abs=1e-6)
