"""How hard one eta pushes at each depth (RESULTS 10.2, issue 38): the layer-wise defense's training
loss minus PGD-AT's, on the same weights, batches and random starts, for each eta of the depth
series' grid, on nets of several depths. In the ODE view the perturbations of N blocks add up, so
the same per-block eta may push a deeper net harder; the 1/blocks alternative of 10.2 assumes it
does. Each net is measured twice: with its trained weights (a run directory's last.ckpt) and as
initialised (the run's own model config, seed 0), on the first n held-out validation images, in
training mode, as the defense sees it in training. Nothing is trained or changed here.

    OMP_NUM_THREADS=1 python experiments/depth_eta_strength.py outputs/depth_strength/resnet{20,56,110} \\
        --n-examples 512 --json experiments/results/depth_eta_strength.json
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from benchlib import machine, write_record
from ladlit.checkpoints import load_model
from ladlit.config import build, compose_config
from ladlit.defenses.base import Defense
from ladlit.evaluation.accuracy import first_examples
from ladlit.models import find_residual_blocks

GRID = (0.0003, 0.001, 0.003)  # the depth series' eta grid (experiments/cpu_study_depth_plan.sh)


def defense(experiment: str, overrides: list[str]) -> Defense:
    """The defense as `python -m ladlit.train experiment=<experiment> <overrides>` trains with it."""
    return build(compose_config("train", [f"experiment={experiment}", *overrides]).defense, key="defense")


def training_losses(net: nn.Module, defenses: dict[str, Defense], batches: list) -> dict[str, float]:
    """Mean training loss of each defense over `batches`; batch i starts every defense's random
    draws from seed i, and each sees its own copy of the net (training mode moves BatchNorm's
    running statistics, and the hooks of a layer-wise defense stay on the copy)."""
    losses: dict[str, list[float]] = {name: [] for name in defenses}
    for i, (x, y) in enumerate(batches):
        for name, d in defenses.items():
            torch.manual_seed(i)
            losses[name].append(d.training_loss(copy.deepcopy(net).train(), x, y).loss.item())
    return {name: statistics.fmean(values) for name, values in losses.items()}


def strength(net: nn.Module, defenses: dict[str, Defense], batches: list) -> dict[str, dict[str, float]]:
    """PGD-AT's training loss, and for each eta the layer-wise defense's loss and its excess over PGD-AT's."""
    losses = training_losses(net, defenses, batches)
    pgd = losses.pop("pgd")
    return {"pgd": {"loss": pgd}} | {name: {"loss": v, "excess": v - pgd} for name, v in losses.items()}


def measure(run: Path, etas: tuple[float, ...], n_examples: int, batch_size: int) -> dict:
    loaded = load_model(compose_config("eval", [f"ckpt={run / 'checkpoints' / 'last.ckpt'}"]))  # not best.ckpt
    experiment = loaded.run_config["choices"]["experiment"]
    defenses = {"pgd": defense(experiment, ["defense=pgd"])}
    defenses |= {f"lad eta={e}": defense(experiment, ["defense=lad", f"defense.eta={e}"]) for e in etas}
    datamodule = build(loaded.dataset_cfg, key="dataset", eval_batch_size=batch_size)
    datamodule.setup("fit")
    x, y = first_examples(datamodule.val_dataloader(), n_examples, torch.device("cpu"))
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    torch.manual_seed(0)
    initial = build(OmegaConf.create(loaded.run_config["model"]), key="model")
    start = time.time()
    result = {
        "run": str(run),
        "checkpoint": loaded.identity,
        "model": loaded.run_config["choices"]["model"],
        "blocks": len(find_residual_blocks(loaded.net)),
        "trained_epochs": loaded.identity["epoch"] + 1,
        "n_examples": len(y),
        "trained": strength(loaded.net, defenses, batches),
        "initial": strength(initial, defenses, batches),
    }
    return result | {"seconds": time.time() - start}


def ratio(measured: dict, base: dict) -> str:
    """The excess relative to the base's, "-" where the base's is 0 (eta 0: PGD-AT itself)."""
    return f"{measured['excess'] / base['excess']:.1f}" if base["excess"] else "-"


def table(results: list[dict]) -> str:
    """Markdown: per net and weights, PGD-AT's loss and the excess of each eta, and the excess
    relative to the shallowest net's at the same eta."""
    etas = [k for k in results[0]["trained"] if k != "pgd"]
    lines = [
        "| net | blocks | weights | PGD-AT loss | " + " | ".join(f"{k}: excess (x shallowest)" for k in etas) + " |",
        "|---|---:|---|---:|" + "---:|" * len(etas),
    ]
    for weights in ("initial", "trained"):
        base = results[0][weights]
        for r in results:
            cells = [f"{r[weights][k]['excess']:+.4f} ({ratio(r[weights][k], base[k])})" for k in etas]
            lines.append(
                f"| {r['model']} | {r['blocks']} | {weights} | {r[weights]['pgd']['loss']:.4f} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories, shallowest first")
    parser.add_argument("--etas", type=float, nargs="+", default=list(GRID))
    parser.add_argument("--n-examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64, help="the regime's training batch (BatchNorm sees it)")
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args()
    measured_on = machine(torch.device("cpu"))
    results = []
    for run in args.runs:
        results.append(measure(run, tuple(args.etas), args.n_examples, args.batch_size))
        print(f"{run}: {results[-1]['seconds']:.0f} s", file=sys.stderr)
    print(table(results))
    if args.json:
        write_record(args.json, measured_on, {"results": results, "table": table(results)})


if __name__ == "__main__":
    main()
