"""`experiments/bench_autoattack.py` records every figure RESULTS 4 quotes from it, measured in one
invocation: per-component seconds of both implementations, threads, workers, the warm-up, the
machine and the command."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from helpers import experiment_script

pytest.importorskip("pyautoattack", reason="the reference AutoAttack is not installed: pip install -e '.[compare]'")

COMPONENTS = {"apgd-ce", "apgd-t", "fab-t", "square"}


@pytest.fixture
def bench():
    return experiment_script("bench_autoattack")


@pytest.mark.timeout(300)
def test_one_thread_run_records_both_implementations_threads_and_machine(quickstart_run, bench, tmp_path, monkeypatch):
    out = tmp_path / "bench.json"
    argv = ["bench_autoattack.py", str(quickstart_run), "--n", "6", "--batch-size", "6", "--threads", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--warmup", "2", "--json", str(out)])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # what --threads 1 must change
    try:
        bench.main()
    finally:
        torch.set_num_threads(threads)
    record = json.loads(out.read_text())
    assert record["command"].endswith(f"--n 6 --batch-size 6 --threads 1 --warmup 2 --json {out}")
    assert {"cpu", "cores", "threads", "load_1min", "load_1min_at_end", "device", "torch"} <= set(record["machine"])
    assert record["machine"]["threads"] == record["threads"] == 1 and record["workers"] == 1
    assert record["versions"]["pyautoattack"] != "-" and record["n"] == 6 and record["date"]
    assert record["warmup"]["n"] == 2 and set(record["warmup"]["seconds"]) == {"ladlit", "reference"}
    for name in ("ladlit", "reference"):
        timed = record[name]
        assert (timed["processes"], timed["threads_per_process"]) == (1, 1)
        assert set(timed["split"]) == COMPONENTS and timed["seconds"] >= sum(timed["split"].values())
        assert len(timed["robust_examples"]) == round(timed["robust_acc"] * 6)
    assert record["speedup"] == pytest.approx(record["reference"]["seconds"] / record["ladlit"]["seconds"])
    assert isinstance(record["disagree"], list)


def test_the_ladlit_row_counts_each_worker_as_one_thread(bench):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.rand(2, 12), torch.tensor([0, 1])
    calls = []
    bench.ours = lambda *args: calls.append(args) or (torch.zeros(len(args[2]), dtype=torch.bool), {})
    bench.reference = lambda *args: (torch.zeros(len(args[2]), dtype=torch.bool), {})
    result = bench.compare(net, x, y, 0.1, 2, torch.device("cpu"), workers=2, warmup=1)
    assert (result["ladlit"]["processes"], result["ladlit"]["threads_per_process"]) == (2, 1)
    assert result["reference"]["threads_per_process"] == torch.get_num_threads() == result["threads"]
    assert [len(c[2]) for c in calls] == [1, 2]  # the warm-up on the first example, then all of them
