"""Accuracy under attack: one helper for a batch, one loop over a DataLoader with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import torch
from rich.progress import Progress
from torch import Tensor, nn

from ladlit.attacks import Attack
from ladlit.data import to_unit_float


def correct(model: nn.Module, x: Tensor, y: Tensor, attack: Attack | None = None) -> Tensor:
    """Per-example correctness (bool) of `model` on (x, y), under `attack` if given."""
    x_eval = x if attack is None else attack(model, x, y)
    with torch.no_grad():
        return model(x_eval).argmax(1) == y


def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    attacks: Mapping[str, Attack],
    device: torch.device,
    n_examples: int | None = None,
    seconds: dict[str, float] | None = None,
) -> tuple[dict[str, float], int]:
    """Clean accuracy and accuracy under each attack on the first `n_examples` examples.

    Returns ({"clean": acc, <attack>: acc, ...}, number of examples evaluated); if `seconds` is
    given, each attack's wall time is added to it.
    """
    model.eval().to(device)
    seconds = {} if seconds is None else seconds
    hits = {name: 0 for name in ("clean", *attacks)}
    seen = 0
    total = n_examples or len(getattr(batches, "dataset", [])) or None
    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating", total=total)
        for x, y in batches:
            if n_examples is not None and seen >= n_examples:
                break
            keep = len(y) if n_examples is None else min(len(y), n_examples - seen)
            x, y = to_unit_float(x[:keep].to(device)), y[:keep].to(device)
            hits["clean"] += int(correct(model, x, y).sum())
            for name, attack in attacks.items():
                start = time.perf_counter()
                hit = int(correct(model, x, y, attack).sum())
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
                hits[name] += hit
            seen += keep
            progress.advance(task, keep)
    return {name: c / max(seen, 1) for name, c in hits.items()}, seen


def first_examples(batches: Iterable[tuple[Tensor, Tensor]], n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The first `n` examples of a loader as [0, 1] float images on `device`."""
    xs, ys, seen = [], [], 0
    for x, y in batches:
        xs.append(x[: n - seen])
        ys.append(y[: n - seen])
        seen += len(ys[-1])
        if seen >= n:
            break
    return to_unit_float(torch.cat(xs).to(device)), torch.cat(ys).to(device)
