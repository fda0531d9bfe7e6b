"""Training throughput (images/s): our Lightning path vs a plain PyTorch loop of the same work.

Both paths use the same DataModule (in-memory uint8 images, batched crop/flip on the batch's
device), the same defense object and SGD; the plain loop is what one would write by hand. The
two are interleaved (plain, Lightning, plain, ...) and the median over repeats is reported, so
the ratio measures Lightning's overhead (target: <= 1.05).

    python experiments/bench_throughput.py --models resnet20 --defenses none pgd trades lad lad_sm --steps 8
"""

from __future__ import annotations

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch

from benchlib import QUIET_TRAINER, RandomImages, build, header, pick_device, sync
from ladlit.data import to_unit_float
from ladlit.module import AdversarialTraining

MODELS = ["resnet20", "preact_resnet18", "wrn34_10"]
DEFENSES = ["none", "pgd", "trades", "lad", "lad_sm"]


def plain_loop(model_name: str, defense_name: str, steps: int, batch_size: int, device: torch.device) -> float:
    torch.manual_seed(0)
    net, defense = build(model_name, defense_name, 10)
    net = net.to(device).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    dm = RandomImages(n=steps * batch_size, batch_size=batch_size)
    dm.setup()
    start = time.perf_counter()
    for x, y in dm.train_dataloader():
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x = dm.augment(to_unit_float(x))
        optimizer.zero_grad(set_to_none=True)
        defense.training_loss(net, x, y).loss.backward()
        optimizer.step()
    sync(device)
    return time.perf_counter() - start


def lightning_path(model_name: str, defense_name: str, steps: int, batch_size: int, device: torch.device) -> float:
    torch.manual_seed(0)
    optimizer = lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    module = AdversarialTraining(*build(model_name, defense_name, 10), optimizer)
    dm = RandomImages(n=steps * batch_size, batch_size=batch_size)
    trainer = pl.Trainer(
        accelerator=device.type,
        devices=1,
        max_epochs=1,
        inference_mode=False,
        use_distributed_sampler=False,
        **QUIET_TRAINER,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet20"], choices=MODELS)
    parser.add_argument("--defenses", nargs="+", default=DEFENSES, choices=DEFENSES)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="training steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = pick_device()
    print(
        header(
            "bench_throughput",
            device,
            f"pytorch-lightning {pl.__version__}",
            f"batch {args.batch_size}",
            f"{args.steps} steps",
            f"median of {args.repeats}",
        )
    )
    print("| model | defense | plain (img/s) | Lightning (img/s) | Lightning time / plain time |")
    print("|---|---|---:|---:|---:|")
    for model_name in args.models:
        for defense_name in args.defenses:
            plain_loop(model_name, defense_name, 1, args.batch_size, device)  # warm-up
            times = {"plain": [], "lightning": []}
            for _ in range(args.repeats):
                times["plain"].append(plain_loop(model_name, defense_name, args.steps, args.batch_size, device))
                times["lightning"].append(lightning_path(model_name, defense_name, args.steps, args.batch_size, device))
            plain, light = (statistics.median(times[k]) for k in ("plain", "lightning"))
            images = args.steps * args.batch_size
            print(
                f"| {model_name} | {defense_name} | {images / plain:.1f} | {images / light:.1f} | {light / plain:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
