"""`experiments/depth_eta_strength.py` compares the layer-wise defense with PGD-AT on the same
weights, batches and random starts: at eta 0 the two training losses are the same number, and a
positive eta pushes the loss up, trained or as initialised."""

from __future__ import annotations

import json
import sys

import pytest
from helpers import experiment_script


@pytest.fixture
def strength():
    return experiment_script("depth_eta_strength")


def test_eta_zero_is_pgd_at_exactly_and_a_positive_eta_pushes_the_loss_up(quickstart_run, strength):
    result = strength.measure(quickstart_run, (0.0, 0.003), n_examples=64, batch_size=32)
    assert result["blocks"] == 3 and result["n_examples"] == 64
    for weights in ("trained", "initial"):
        assert result[weights]["lad eta=0.0"]["excess"] == 0.0  # the pairing: nothing differs but eta
        assert result[weights]["lad eta=0.003"]["excess"] > 0.0


def test_the_record_has_the_table_the_machine_and_the_command(quickstart_run, strength, tmp_path, monkeypatch):
    out = tmp_path / "strength.json"
    argv = [str(quickstart_run), str(quickstart_run), "--etas", "0", "0.001", "--n-examples", "32", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", ["depth_eta_strength.py", *argv])
    strength.main()
    record = json.loads(out.read_text())
    assert len(record["results"]) == 2 and "aten" in record["machine"] and "depth_eta_strength.py" in record["command"]
    assert "| tiny | 3 | trained |" in record["table"] and "(1.0)" in record["table"]  # relative to the first net
    assert "+0.0000 (-)" in record["table"]  # eta 0 has no excess to compare to
    trained = json.loads((quickstart_run / "metrics.json").read_text())["epochs"]
    assert record["results"][0]["trained_epochs"] == record["results"][0]["checkpoint"]["epoch"] + 1 == trained
