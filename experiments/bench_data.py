"""Seconds per training epoch of the data path alone (batches, host-to-device copy, crop/flip).

Compares our loader, with the arrays in host memory and (on a GPU) resident on the device
(`dataset.device_resident=true`), against the usual per-image `TensorDataset` DataLoader
(128 item reads and a collate per batch) doing the same batched augmentation. Random
CIFAR-shaped uint8 images: the data path's cost does not depend on pixel values.

    python experiments/bench_data.py --n 50000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from benchlib import RandomImages, header, pick_device, sync
from ladlit.data import InMemoryDataModule, to_unit_float


def epoch_seconds(loader, dm: InMemoryDataModule, device: torch.device) -> float:
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x = dm.augment(to_unit_float(x))
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = pick_device()
    dm = RandomImages(args.n, batch_size=args.batch_size)
    dm.setup()
    x, y = dm.train_set.tensors
    loaders = {
        "per-image DataLoader (TensorDataset)": DataLoader(
            TensorDataset(x, y),
            batch_size=args.batch_size,
            shuffle=True,
            drop_last=True,
            pin_memory=device.type == "cuda",
        ),
        "ladlit, host arrays": dm.train_dataloader(),
    }
    if device.type == "cuda":
        dm.train_set = dm.train_set.to(device)
        loaders["ladlit, device-resident arrays"] = dm.train_dataloader()
    times = {name: [] for name in loaders}
    for _ in range(args.repeats):
        for name, loader in loaders.items():
            times[name].append(epoch_seconds(loader, dm, device))
    print(header("bench_data", device, f"{args.n} images, batch {args.batch_size}, median of {args.repeats}"))
    print("| data path | s/epoch | images/s |")
    print("|---|---:|---:|")
    for name, ts in times.items():
        s = statistics.median(ts)
        print(f"| {name} | {s:.2f} | {args.n / s:,.0f} |")


if __name__ == "__main__":
    main()
