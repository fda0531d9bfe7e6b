"""Seconds per training epoch of real adversarial training, fp32 baseline vs speed presets.

Runs the project's own training path (the Hydra config, DataModule, LightningModule and
Trainer of `ladlit.train`) for `--epochs` epochs without validation and reports the first
epoch's wall time (which pays for compiling, cuDNN autotuning and allocator warm-up) and the
last one's. Each run starts from an empty compile cache.

    python experiments/bench_epoch.py                                   # GPU: PreActResNet-18, CIFAR-10 jpeg, 50,000 images
    python experiments/bench_epoch.py --presets default gpu_fast --defenses pgd lad lad_sm -- train_attack_steps=10
    python experiments/bench_epoch.py --model resnet20 --train-subset 256 --presets cpu -- train_attack_steps=2   # CPU smoke run
"""

from __future__ import annotations

import argparse
import time

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from benchlib import QUIET_TRAINER, header, pick_device, sync
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
    parser.add_argument("--model", default="preact_resnet18")
    parser.add_argument("--train-subset", type=int, default=None, help="images per epoch (default: all 50,000)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dataset", default="cifar10_jpeg", help="dataset config (digits: a dry run without data)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. train_attack_steps=10")
    args = parser.parse_args()
    print(header("bench_epoch", pick_device(), args.model, f"overrides: {' '.join(args.overrides) or '-'}"))
    print(f"| defense | trainer preset | s, epoch 1 | s/epoch (epoch {args.epochs}) | images/s |")
    print("|---|---|---:|---:|---:|")
    for defense in args.defenses:
        for preset in args.presets:
            try:
                seconds, images = epoch_seconds(
                    preset, defense, args.model, args.train_subset, args.epochs, args.overrides, args.dataset
                )
            except LadlitError as err:  # e.g. speed.compile=true with defense.detach=false
                print(f"| {defense} | {preset} | refused: {err} | - | - |", flush=True)
                continue
            print(
                f"| {defense} | {preset} | {seconds[0]:.1f} | {seconds[-1]:.1f} | {images / seconds[-1]:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
