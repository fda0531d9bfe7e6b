"""`experiments/leak_guard_check.py --json` keeps every run's guard readings, the record RESULTS 9's
quickstart table and the guard's tally are counted from."""

from __future__ import annotations

import json
import sys

from helpers import experiment_script


def test_the_json_holds_each_runs_history(tmp_path, monkeypatch):
    history = [
        {"epoch": e, "val/label_leak": 0.01 * e, "val/leaking": 0.0, "val/acc_clean": 0.9, "train/acc": 0.8}
        for e in range(3)
    ]
    for eta in ("0.001", "0.3"):  # runs already trained are read, not trained again
        run = tmp_path / f"eta{eta}_seed0"
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps({"history": history}))
    out = tmp_path / "results" / "quickstart.json"
    script = experiment_script("leak_guard_check")
    argv = ["leak_guard_check.py", "--etas", "0.001", "0.3", "--out", str(tmp_path), "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    script.main()
    record = json.loads(out.read_text())
    assert [(run["eta"], run["seed"]) for run in record["runs"]] == [(0.001, 0), (0.3, 0)]
    assert all(run["history"] == history for run in record["runs"])
    assert record["command"].endswith(f"--json {out}") and record["machine"]["cores"] and record["date"]
