"""Seconds per training step of PGD-AT, TRADES and their LAD / LAD-SM variants.

All defenses are timed interleaved in one process (repeat r runs every defense once), so
machine noise hits them alike; the figure is the median over repeats, after one warm-up step
each. One step = inner maximisation + outer forward/backward + SGD update.

    python experiments/bench_step.py --models resnet20 preact_resnet18 --batch-size 128 --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from benchlib import build, header, pick_device, sync
from ladlit.defenses import PGDTraining


class FrozenParamsPGD(PGDTraining):
    """PGD-AT with the parameters' requires_grad off during the inner steps (a speed-option study:
    the attack's `autograd.grad` asks for the input gradient only, so is anything saved?)."""

    @contextlib.contextmanager
    def attack_mode(self, model):
        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            with super().attack_mode(model):
                yield
        finally:
            for p in params:
                p.requires_grad_(True)


MODELS = ["resnet20", "preact_resnet18"]
DEFENSES = {
    "pgd": "pgd",
    "lad": "lad",
    "lad_sm": "lad_sm",
    "trades": "trades",
    "trades+lad": "lad_trades",
    "trades+lad_sm": "lad_sm_trades",
}


def defenses(model: str, steps: int) -> dict[str, object]:
    """The defenses as conf/ builds them, plus the frozen-parameter PGD variant."""
    named = {label: build(model, config, steps)[1] for label, config in DEFENSES.items()}
    return {"pgd": named.pop("pgd"), "pgd, params frozen in attack": FrozenParamsPGD(steps=steps), **named}


def time_step(net, defense, optimizer, x, y) -> float:
    sync(x.device)
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    defense.training_loss(net, x, y).loss.backward()
    optimizer.step()
    sync(x.device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--attack-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = pick_device()
    print(
        header(
            "bench_step",
            device,
            f"batch {args.batch_size}",
            f"{args.attack_steps} attack steps",
            f"median of {args.repeats}",
        )
    )
    print("| model | defense | s/step | ratio to base |")
    print("|---|---|---:|---:|")
    for model_name in args.models:
        torch.manual_seed(0)
        net = build(model_name, "pgd", args.attack_steps)[0].to(device).train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(args.batch_size, 3, 32, 32, device=device)
        y = torch.randint(0, 10, (args.batch_size,), device=device)
        named = defenses(model_name, args.attack_steps)
        times: dict[str, list[float]] = {k: [] for k in named}
        for d in named.values():  # warm-up
            time_step(net, d, optimizer, x, y)
        for _ in range(args.repeats):
            for k, d in named.items():
                times[k].append(time_step(net, d, optimizer, x, y))
        median = {k: statistics.median(v) for k, v in times.items()}
        for k, t in median.items():
            base = "trades" if k.startswith("trades") else "pgd"
            print(f"| {model_name} | {k} | {t:.3f} | {t / median[base]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
