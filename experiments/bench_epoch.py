"""Seconds per training epoch of real adversarial training, fp32 baseline vs speed presets.

Runs the project's own training path (the Hydra config, DataModule, LightningModule and
Trainer of `ladlit.train`) for `--epochs` epochs without validation and reports the first
epoch's wall time (which pays for compiling, cuDNN autotuning and allocator warm-up) and the
last one's. Each run starts from an empty compile cache.

    python experiments/bench_epoch.py                                   # GPU: PreActResNet-18, CIFAR-10 jpeg, 50,000 images
    python experiments/bench_epoch.py --presets default gpu_fast --defenses pgd lad lad_sm -- train_attack_steps=10
    python experiments/bench_epoch.py --model resnet20 --train-subset 256 --presets cpu -- train_attack_steps=2   # CPU smoke run
    python experiments/bench_epoch.py --model resnet20 resnet56 --presets cpu --defenses pgd lad --threads 1 \
        --train-subset 6400 --json experiments/results/step_cost/depth.json -- experiment=cpu_study   # RESULTS 8.4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from benchlib import QUIET_TRAINER, header, machine, pick_device, set_threads, sync, write_record
from ladlit.config import compose_config
from ladlit.errors import LadlitError
from ladlit.train import build_module


class EpochTimer(pl.Callback):
    """Wall time of each training epoch, synchronised with the GPU at both ends."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        sync(module.device)
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        sync(module.device)
        self.seconds.append(time.perf_counter() - self.start)


def epoch_seconds(
    preset: str,
    defense: str,
    model: str,
    train_subset: int | None,
    epochs: int,
    extra: list[str],
    dataset: str = "cifar10_jpeg",
) -> tuple[list[float], int]:
    cfg = compose_config(
        "train",
        [
            f"trainer={preset}",
            f"defense={defense}",
            f"model={model}",
            f"dataset={dataset}",
            "dataset.val_size=0",
            f"dataset.train_subset={train_subset or 'null'}",
            f"trainer.max_epochs={epochs}",
            "logger=csv",
            *extra,
        ],
    )
    torch._dynamo.reset()  # no graphs from the previous run, and its variants do not count towards the limit
    pl.seed_everything(cfg.seed)
    datamodule, module, timer = instantiate(cfg.dataset), build_module(cfg), EpochTimer()
    trainer = instantiate(cfg.trainer, callbacks=[timer], **QUIET_TRAINER)
    trainer.fit(module, datamodule=datamodule)
    return timer.seconds, len(datamodule.train_set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["default", "gpu_fast"], help="trainer= configs to compare")
    parser.add_argument("--defenses", nargs="+", default=["pgd", "lad", "lad_sm"])
    parser.add_argument("--model", "--models", nargs="+", default=["preact_resnet18"], help="model configs")
    parser.add_argument("--train-subset", type=int, default=None, help="images per epoch (default: all 50,000)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dataset", default="cifar10_jpeg", help="dataset config (digits: a dry run without data)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here, with the machine")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. train_attack_steps=10")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    device = pick_device()
    measured_on = machine(device)
    models = " ".join(args.model)
    print(header("bench_epoch", device, models, f"overrides: {' '.join(args.overrides) or '-'}"))
    print(f"| model | defense | trainer preset | s, epoch 1 | s/epoch (epoch {args.epochs}) | images/s |")
    print("|---|---|---|---:|---:|---:|")
    rows = []
    for model in args.model:
        for defense in args.defenses:
            for preset in args.presets:
                try:
                    seconds, images = epoch_seconds(
                        preset, defense, model, args.train_subset, args.epochs, args.overrides, args.dataset
                    )
                except LadlitError as err:  # e.g. speed.compile=true with defense.detach=false
                    print(f"| {model} | {defense} | {preset} | refused: {err} | - | - |", flush=True)
                    continue
                rate = images / seconds[-1]
                rows.append(
                    {"model": model, "defense": defense, "preset": preset, "images": images, "epoch_seconds": seconds}
                )
                rows[-1]["images_per_second"] = rate  # over the last epoch: the first pays for warm-up
                print(
                    f"| {model} | {defense} | {preset} | {seconds[0]:.1f} | {seconds[-1]:.1f} | {rate:,.0f} |",
                    flush=True,
                )
    if args.json:
        settings = {"threads": threads, "epochs": args.epochs, "dataset": args.dataset, "overrides": args.overrides}
        write_record(args.json, measured_on, {**settings, "rows": rows})


if __name__ == "__main__":
    main()
