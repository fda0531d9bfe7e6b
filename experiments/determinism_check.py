"""Does a committed run repeat itself? Train it again from the overrides that made it, for its
first `--epochs` epochs, and compare the per-epoch history with the committed record value by
value (times left out; `cpu_study.history_difference`, the test `cpu_study.py --retrain` applies
before evaluating a retrained checkpoint as the committed model). The learning-rate schedule is
the full run's; training stops after the last epoch compared, then tests the best checkpoint
(`dataset.test_subset` may differ from the committed run's: it changes the test images only).

    OMP_NUM_THREADS=1 python experiments/determinism_check.py experiments/results/cpu_study/cpu_study_full/pgd/seed2 \\
        --epochs 1 --json experiments/results/determinism/regime_c_pgd_seed2.json \\
        -- experiment=cpu_study_full defense=pgd seed=2 dataset.test_subset=100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from cpu_study import history_difference

from benchlib import machine, pick_device, write_record
from ladlit.config import compose_config
from ladlit.records import BOOKKEEPING, flatten_config, key_in, read_json
from ladlit.train import train

REPO = Path(__file__).resolve().parents[1]


class StopAfter(pl.Callback):
    """Stop fitting after `epochs` epochs, validation included, leaving the schedule as configured."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def config_differences(committed: dict[str, Any], composed: dict[str, Any]) -> list[str]:
    """Keys (outside bookkeeping) where the overrides' config differs from the committed run's:
    empty when the overrides rebuild it, or a key added to the configs since the run."""
    old, new = dict(flatten_config(committed)), dict(flatten_config(composed))
    keys = sorted(k for k in set(old) | set(new) if not key_in(k, (*BOOKKEEPING, "dataset.test_subset")))
    return [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}" for k in keys if old.get(k) != new.get(k)]


def check(record_dir: Path, overrides: list[str], epochs: int, out: Path) -> dict[str, Any]:
    """Retrain into `out` and compare its first `epochs` epochs with the record in `record_dir`."""
    from omegaconf import OmegaConf

    committed = read_json(record_dir / "metrics.json") or {}
    if len(committed.get("history") or []) < epochs:
        sys.exit(f"{record_dir / 'metrics.json'} holds fewer than {epochs} epochs of history")
    if out.exists():
        sys.exit(f"{out} exists: remove it or pass --out (a check starts from scratch)")
    cfg = compose_config("train", overrides, output_dir=out)
    composed = OmegaConf.to_container(cfg, resolve=True)
    train(cfg, extra_callbacks=[StopAfter(epochs)])
    retrained = read_json(out / "metrics.json") or {}
    old = {**committed, "history": committed["history"][:epochs]}
    keys = sorted({k for row in old["history"] for k in row if "seconds" not in k})
    return {
        "committed": str(record_dir),
        "overrides": overrides,
        "epochs": epochs,
        "config_differences": config_differences(committed.get("config") or {}, composed),
        "keys_compared": keys,
        "difference": history_difference(old, retrained),
        "history": {"committed": old["history"], "retrained": retrained.get("history") or []},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path, help="the committed run's directory (its metrics.json)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs to train again and compare")
    parser.add_argument("--out", type=Path, default=None, help="where to train (default outputs/determinism/...)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("overrides", nargs="+", help="the overrides that trained it, e.g. experiment=... seed=2")
    args = parser.parse_args()
    record = args.record.resolve()
    out = args.out or REPO / "outputs" / "determinism" / "_".join(record.parts[-3:])
    measured_on = machine(pick_device())
    result = check(record, args.overrides, args.epochs, out)
    same = not result["difference"]
    print(
        f"{len(result['keys_compared'])} keys over {args.epochs} epoch(s): "
        + ("identical" if same else f"differ ({result['difference']})")
        + (f"; config differs: {result['config_differences']}" if result["config_differences"] else "")
    )
    if args.json:
        write_record(args.json, measured_on, {"identical": same, **result})
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
