"""Each base trains on the quickstart data, alone and under LAD."""

from __future__ import annotations

import pytest
from helpers import quickstart_config

from ladlit.train import train


# --- each base trains on the quickstart data, alone and under LAD ----------------------------------------
@pytest.mark.parametrize("defense", ["pgd_awp", "trades_awp", "mart", "lad_mart", "lad_sm_awp"])
def test_base_trains_with_fast_dev_run(defense, tmp_path):
    metrics = train(
        quickstart_config(tmp_path, f"defense={defense}", "trainer.fast_dev_run=true", "train_attack_steps=2")
    )
    assert 0.0 <= metrics["test/acc_pgd20"] <= metrics["test/acc_clean"]
