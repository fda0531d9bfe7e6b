"""Training callbacks: weight EMA is what is checkpointed, and it resumes exactly."""

from __future__ import annotations

import pytest
import torch
from helpers import quickstart_config

from ladlit.train import train

pytestmark = pytest.mark.numerics  # floats of two computations compared: see `make test-kernels`


# --- EMA ------------------------------------------------------------------------------------------------
class _Crash(Exception):
    pass


def test_ema_is_what_is_checkpointed_and_resumes_exactly(tmp_path):
    import pytorch_lightning as pl

    class CrashInEpoch2(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch == 2 and batch_idx == 1:
                raise _Crash

    short = [
        "ema.decay=0.9",
        "trainer.max_epochs=4",
        "train_attack_steps=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=1",
        "dataset.test_subset=32",
    ]
    train(quickstart_config(tmp_path / "a", *short))
    with pytest.raises(_Crash):
        train(quickstart_config(tmp_path / "b", *short), extra_callbacks=[CrashInEpoch2()])
    train(quickstart_config(tmp_path / "b", *short))  # resumes from last.ckpt (end of epoch 1)
    a, b = (torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=False) for d in ("a", "b"))
    for key in a["state_dict"]:  # the EMA weights, and the raw weights kept beside them
        torch.testing.assert_close(b["state_dict"][key], a["state_dict"][key], rtol=1e-5, atol=1e-6, msg=key)
        torch.testing.assert_close(b["current_model_state"][key], a["current_model_state"][key], rtol=1e-5, atol=1e-6)
    w = "net.blocks.0.conv1.weight"
    assert not torch.equal(a["state_dict"][w], a["current_model_state"][w])  # the average is not the raw weights
