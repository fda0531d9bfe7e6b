"""Every evaluation entry names exactly what it measured: which weights (epoch, global step,
content hash) and every setting of its attacks; the report compares only identical attacks and
leaves out entries whose checkpoint has been replaced since; and an evaluation never reads a
checkpoint while training replaces it."""

from __future__ import annotations

import hashlib
import threading
import time
from types import SimpleNamespace

import torch
from filelock import FileLock, Timeout
from helpers import PGD, compose_config, write_eval, write_run

from ladlit.callbacks import RunCheckpoint
from ladlit.checkpoints import read_checkpoint
from ladlit.eval import evaluate_checkpoint
from ladlit.locks import CHECKPOINT_LOCK, checkpoint_lock
from ladlit.reporting.aggregate import find_runs, summarize


def test_an_evaluation_entry_names_its_weights_and_its_attacks_settings(quickstart_run):
    entries = evaluate_checkpoint(
        compose_config(
            "eval", [f"ckpt={quickstart_run}", "attack=[pgd20]", "n_examples=20", "sanity_examples=0", "eps_sweep=[]"]
        )
    )
    (entry,) = entries.values()
    best = quickstart_run / "checkpoints" / "best.ckpt"
    saved = torch.load(best, weights_only=False)
    assert entry["checkpoint_identity"] == {
        "epoch": saved["epoch"],
        "global_step": saved["global_step"],
        "sha256": hashlib.sha256(best.read_bytes()).hexdigest()[:16],
    }
    assert entry["attacks"]["pgd20"] == {
        "attack": "PGD",
        "eps": 0.1,
        "alpha": 0.025,
        "steps": 20,
        "restarts": 1,
        "random_start": True,
        "loss": "ce",
    }


def pgd_settings(steps: int) -> dict:
    return {
        "attack": "PGD",
        "eps": 0.03,
        "alpha": 0.0075,
        "steps": steps,
        "restarts": 1,
        "random_start": True,
        "loss": "ce",
    }


def entry(pgd20: float, steps: int = 20, **extra) -> dict:
    return {
        "checkpoint": "best.ckpt",
        "n_examples": 1000,
        "eps": 0.03,
        "accuracy": {"clean": 0.5, "pgd20": pgd20},
        "attacks": {"pgd20": pgd_settings(steps)},
        **extra,
    }


def test_the_report_never_averages_an_attack_run_with_other_settings(tmp_path):
    for seed, (acc, steps) in enumerate([(0.30, 20), (0.32, 20), (0.20, 100)]):
        write_eval(write_run(tmp_path, f"s{seed}", seed, PGD, clean=0.5, pgd20=0.3), [entry(acc, steps)])
    (row,) = [r for r in summarize(find_runs([tmp_path], [])) if r.n == 1000]
    assert sorted(row.per_seed["pgd20"].values()) == [0.30, 0.32]
    (other,) = [name for name in row.per_seed if name.startswith("pgd20 [")]
    assert "steps=100" in other and list(row.per_seed[other].values()) == [0.20]


def test_the_report_leaves_out_an_entry_whose_checkpoint_was_replaced_since(tmp_path):
    history = [{"epoch": 0, "val/robust_acc": 0.2}, {"epoch": 1, "val/robust_acc": 0.3}]
    # only the records kept: the run's record says best.ckpt is epoch 1
    run = write_run(tmp_path, "records", 0, PGD, clean=0.5, pgd20=0.3, history=history)
    write_eval(run, [entry(0.25, checkpoint_identity={"epoch": 0, "global_step": 10, "sha256": "aaaa"})])
    # the checkpoint beside the record: its bytes are compared
    run = write_run(tmp_path, "files", 1, PGD, clean=0.5, pgd20=0.3, history=history)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "best.ckpt").write_bytes(b"new weights")
    write_eval(run, [entry(0.25, checkpoint_identity={"epoch": 1, "global_step": 20, "sha256": "bbbb"})])
    notes: list[str] = []
    rows = summarize(find_runs([tmp_path], notes))
    assert not [r for r in rows if r.n == 1000]
    assert any("records" in n and "epoch 0" in n and "now epoch 1" in n for n in notes), notes
    assert any("files" in n and "the file is now" in n for n in notes), notes
    # the same entries still count while they describe the checkpoint (and old ones without an identity)
    current = hashlib.sha256(b"new weights").hexdigest()[:16]
    write_eval(run, [entry(0.25, checkpoint_identity={"epoch": 1, "global_step": 20, "sha256": current})])
    write_eval(tmp_path / "records", [entry(0.25)])
    assert len([r for r in summarize(find_runs([tmp_path], [])) if r.n == 1000]) == 1


def test_an_evaluation_waits_while_training_writes_a_checkpoint(tmp_path, net):
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": net.state_dict(), "epoch": 3, "global_step": 30}, path)
    read = threading.Event()
    with checkpoint_lock(tmp_path):  # training is writing (and made the lock file before its first checkpoint)
        reader = threading.Thread(target=lambda: (read_checkpoint(path), read.set()))
        reader.start()
        time.sleep(0.5)
        assert not read.is_set()
    reader.join(timeout=10)
    assert read.is_set()


def test_training_writes_its_checkpoints_under_the_lock(tmp_path, monkeypatch):
    held = []

    def save(self, trainer, filepath):  # what Lightning does, seen from another process's side
        try:
            FileLock(tmp_path / CHECKPOINT_LOCK).acquire(timeout=0)
            held.append(False)
        except Timeout:
            held.append(True)

    monkeypatch.setattr("pytorch_lightning.callbacks.ModelCheckpoint._save_checkpoint", save)
    RunCheckpoint(dirpath=tmp_path)._save_checkpoint(SimpleNamespace(is_global_zero=True), str(tmp_path / "best.ckpt"))
    assert held == [True]
    # a rank that does not write takes no lock: it waits for the writer at Lightning's barrier,
    # where waiting for the writer's lock too would deadlock (tests/test_ddp.py)
    RunCheckpoint(dirpath=tmp_path)._save_checkpoint(SimpleNamespace(is_global_zero=False), str(tmp_path / "best.ckpt"))
    assert held == [True, False]


def test_weights_from_elsewhere_are_read_without_leaving_a_lock_file(tmp_path, net):
    path = tmp_path / "weights.pt"
    torch.save(net.state_dict(), path)
    _, identity = read_checkpoint(path)
    assert identity["epoch"] is None and sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]
