"""Processes that share a run directory: a second training is refused while the first holds it,
and concurrent evaluations of one run lose none of each other's results. The holders and the
merging lanes are real processes; the refused second training runs in the test's own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import run_cli

from ladlit.locks import TRAIN_LOCK, TRAIN_OWNER

HOLD = """
import sys, time
from pathlib import Path
from ladlit.locks import training_lock
with training_lock(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize(
    "overrides,message",
    [
        ([], "pid {pid}"),
        (["optimizer.lr=-1"], "optimizer: Invalid learning rate"),
    ],  # refused by the lock; by its config
    ids=["good config", "bad config"],
)
def test_a_second_training_in_a_busy_run_directory_is_refused_and_touches_nothing(
    tmp_path, overrides, message, monkeypatch
):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        (run / "keep.txt").write_text("the first process's work")
        code, printed = run_cli("train", ["experiment=quickstart", f"hydra.run.dir={run}", *overrides], monkeypatch)
    finally:
        holder.kill()
        holder.wait()
    assert code == 2, printed[-2000:]
    assert message.format(pid=holder.pid) in printed and "Traceback" not in printed
    assert (run / "keep.txt").read_text() == "the first process's work"  # nothing of the first's removed
    assert (run / TRAIN_OWNER).exists()  # nor its claim on the directory
    assert not (run / "checkpoints").exists()


def test_the_lock_is_free_again_once_its_holder_is_gone(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    holder.kill()  # killed, not exited: the operating system drops its lock
    holder.wait()
    from ladlit.locks import training_lock

    with training_lock(run):
        assert (run / TRAIN_LOCK).exists()


MERGE = """
import sys, time
from pathlib import Path
from ladlit.evaluation.results import add_evaluations
record, name = Path(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
while not record.with_name("go").exists():  # both start merging at once
    time.sleep(0.01)
for i in range(N):
    add_evaluations(record, {"seed": 0}, {f"{name}-{i}": {"checkpoint": name, "accuracy": {"clean": i / 40}}})
"""


MERGES = 150  # without the lock, two such lanes lose results in every trial tried


def test_concurrent_evaluations_of_one_run_lose_no_result(tmp_path):
    record = tmp_path / "metrics.json"
    script = textwrap.dedent(MERGE).replace("range(N)", f"range({MERGES})")
    lanes = [
        subprocess.Popen([sys.executable, "-c", script, str(record), name], stdout=subprocess.PIPE, text=True)
        for name in ("best", "last")
    ]
    assert all(lane.stdout.readline().strip() == "ready" for lane in lanes)
    (tmp_path / "go").touch()
    deadline = time.time() + 300
    for lane in lanes:
        assert lane.wait(timeout=max(1, deadline - time.time())) == 0
    keys = set(json.loads(record.read_text())["evaluations"])
    assert keys == {f"{name}-{i}" for name in ("best", "last") for i in range(MERGES)}
