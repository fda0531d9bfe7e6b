"""Accuracy of a model under a set of attacks, over a DataLoader, with a progress bar."""

from __future__ import annotations

import time
from typing import Iterable, Mapping

import torch
from rich.progress import Progress
from torch import Tensor, nn

from ladlit.attacks import Attack


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
    correct = {name: 0 for name in ("clean", *attacks)}
    seen = 0
    total = n_examples or len(getattr(batches, "dataset", [])) or None
    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating", total=total)
        for x, y in batches:
            if n_examples is not None and seen >= n_examples:
                break
            keep = len(y) if n_examples is None else min(len(y), n_examples - seen)
            x = x[:keep].to(device)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x
            y = y[:keep].to(device)
            with torch.no_grad():
                correct["clean"] += int((model(x).argmax(1) == y).sum())
            for name, attack in attacks.items():
                start = time.perf_counter()
                x_adv = attack(model, x, y)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
                with torch.no_grad():
                    correct[name] += int((model(x_adv).argmax(1) == y).sum())
            seen += keep
            progress.advance(task, keep)
    return {name: c / max(seen, 1) for name, c in correct.items()}, seen


def first_examples(batches: Iterable[tuple[Tensor, Tensor]], n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The first `n` examples of a loader as [0, 1] float images on `device`."""
    xs, ys, seen = [], [], 0
    for x, y in batches:
        xs.append(x[: n - seen])
        ys.append(y[: n - seen])
        seen += len(ys[-1])
        if seen >= n:
            break
    x = torch.cat(xs).to(device)
    return (x.float().div_(255.0) if x.dtype == torch.uint8 else x), torch.cat(ys).to(device)
