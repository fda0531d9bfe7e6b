"""Accuracy under attack over a DataLoader, with a progress bar: each attack's and the per-example
worst case (correct clean and under every attack, `attacks.outcome`); plus which examples were used."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.progress import Progress
from torch import Tensor, nn

from ladlit.attacks import Attack, correct, worst_case
from ladlit.data import to_unit_float
from ladlit.records import WORST


@dataclass
class ExampleSet:
    """Which examples an evaluation used: the first `n` of a split, fingerprinted by a SHA-1 of
    their labels and pixels, so two numbers are only compared when they come from the same images."""

    split: str = "test"
    n: int = 0
    _digest: Any = field(default_factory=hashlib.sha1, repr=False)

    def add(self, x: Tensor, y: Tensor) -> None:
        self._digest.update(y.detach().cpu().to(torch.int64).numpy().tobytes())
        self._digest.update(x.detach().cpu().contiguous().numpy().tobytes())
        self.n += len(y)

    def record(self) -> dict[str, Any]:
        """What metrics.json keeps: {"split", "first", "sha1"}."""
        return {"split": self.split, "first": self.n, "sha1": self._digest.hexdigest()[:16]}


def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    attacks: Mapping[str, Attack],
    device: torch.device,
    n_examples: int | None = None,
    seconds: dict[str, float] | None = None,
    examples: ExampleSet | None = None,
    outcomes: dict[str, Tensor] | None = None,
) -> tuple[dict[str, float], int]:
    """Clean accuracy and accuracy under each attack on the first `n_examples` examples, and with
    any attack `worst`: the share of examples correct clean and under every one of them.

    Returns ({"clean": acc, <attack>: acc, ..., ["worst": acc]}, number of examples evaluated); if
    `seconds` is given, each attack's wall time is added to it; `examples` fingerprints the images;
    `outcomes` receives each attack's per-example correctness (CPU bool tensors, in example order).
    """
    if WORST in attacks:
        raise ValueError(f"an attack may not be named {WORST!r}: that name is the per-example worst case")
    model.eval().to(device)
    seconds = {} if seconds is None else seconds
    hits = {name: 0 for name in ("clean", *attacks, *([WORST] if attacks else []))}
    seen, masks = 0, {name: [] for name in attacks}
    total = n_examples or len(getattr(batches, "dataset", [])) or None
    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating", total=total)
        for x, y in first_batches(batches, n_examples):
            keep = len(y)
            if examples is not None:
                examples.add(x, y)
            x, y = to_unit_float(x.to(device)), y.to(device)
            clean = correct(model, x, y)
            hits["clean"] += int(clean.sum())
            batch_hits = []
            for name, attack in attacks.items():
                start = time.perf_counter()
                batch_hits.append(correct(model, x, y, attack))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
                hits[name] += int(batch_hits[-1].sum())
                masks[name].append(batch_hits[-1].cpu())
            if WORST in hits:
                hits[WORST] += int(worst_case(clean, batch_hits).sum())
            seen += keep
            progress.advance(task, keep)
    if outcomes is not None:
        outcomes.update({name: torch.cat(m) if m else torch.zeros(0, dtype=torch.bool) for name, m in masks.items()})
    return {name: c / max(seen, 1) for name, c in hits.items()}, seen


def first_batches(batches: Iterable[tuple[Tensor, Tensor]], n: int | None) -> Iterator[tuple[Tensor, Tensor]]:
    """The batches of a loader cut to its first `n` examples (all of them when n is None), as loaded."""
    seen = 0
    for x, y in batches:
        if n is not None and seen >= n:
            return
        keep = len(y) if n is None else min(len(y), n - seen)
        seen += keep
        yield x[:keep], y[:keep]


def first_examples(batches: Iterable[tuple[Tensor, Tensor]], n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The first `n` examples of a loader as [0, 1] float images on `device`."""
    xs, ys = zip(*first_batches(batches, n))
    return to_unit_float(torch.cat(xs).to(device)), torch.cat(ys).to(device)
