"""ladlit's AutoAttack beside the reference implementation (fra31/auto-attack, as PyPI's
`pyautoattack`), on the same model and the same first N test images, same eps, standard
version, seed 0: both robust accuracies, the examples on which they disagree, each one's wall
time split by attack, and the ratio. Both run in this one invocation, each first on the first
`--warmup` images untimed, so neither pays for first-call costs the other skips. The JSON
(`--json`) holds every figure RESULTS 4 quotes: per-component seconds, threads, workers, the
machine and its load, the command. Needs the optional extra: pip install -e '.[compare]'.

    python experiments/bench_autoattack.py outputs/<run> --n 500
    python experiments/bench_autoattack.py outputs/<run> --n 500 --json results.json
    python experiments/bench_autoattack.py outputs/<run> --n 500 --threads 2 --workers 2   # 2 free cores
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from benchlib import header, machine, pick_device, set_threads, write_record
from ladlit.attacks import AutoAttack, correct
from ladlit.checkpoints import load_model
from ladlit.config import compose_config, quoted
from ladlit.evaluation import first_examples

REFERENCE_PARTS = {"apgd-ce": "apgd", "apgd-t": "apgd_targeted", "fab-t": "fab", "square": "square"}


def load_examples(ckpt: str, n: int, batch_size: int, device: torch.device) -> tuple[nn.Module, Tensor, Tensor, float]:
    """The checkpoint's network (eval mode), its first `n` test images and labels, and its eps."""
    cfg = compose_config("eval", [f"ckpt={quoted(ckpt)}", "attack=[]"])
    net, _, _, dataset_cfg, _ = load_model(cfg)
    datamodule = instantiate(dataset_cfg, eval_batch_size=batch_size)
    datamodule.setup("test")
    x, y = first_examples(datamodule.test_dataloader(), n, device)
    return net.eval().to(device), x, y, float(cfg.eps)


def ours(
    net: nn.Module, x: Tensor, y: Tensor, eps: float, batch_size: int, workers: int = 1
) -> tuple[Tensor, dict[str, float]]:
    """Per-example correctness under ladlit's AutoAttack and its seconds per component attack."""
    attack = AutoAttack(eps=eps, version="standard", seed=0, workers=workers)
    hits = torch.cat([correct(net, xb, yb, attack) for xb, yb in zip(x.split(batch_size), y.split(batch_size))])
    # every component named, 0 s where no example was left for it, as the reference's split
    return hits.cpu(), {name: attack.seconds.get(name, 0.0) for name in attack.names()}


def reference(
    net: nn.Module, x: Tensor, y: Tensor, eps: float, batch_size: int, device: torch.device
) -> tuple[Tensor, dict[str, float]]:
    """Per-example correctness under the reference AutoAttack and its seconds per component attack
    (each component's `perturb` timed in place; the package is used as shipped)."""
    from pyautoattack import AutoAttack as ReferenceAutoAttack

    runner = ReferenceAutoAttack(net, eps=eps, version="standard", seed=0, device=device)
    seconds: dict[str, float] = defaultdict(float)
    for part in REFERENCE_PARTS.values():
        component = getattr(runner, part)
        component.perturb = _timed(component.perturb, seconds, part)
    x_adv, _ = runner.run_standard_evaluation(x, y, batch_size=batch_size)
    with torch.no_grad():
        hits = torch.cat([net(xb).argmax(1) == yb for xb, yb in zip(x_adv.split(batch_size), y.split(batch_size))])
    # one object serves APGD-CE and FAB-T's parts by name; report them under the attack names
    return hits.cpu(), {name: seconds.get(part, 0.0) for name, part in REFERENCE_PARTS.items()}


def _timed(method: Any, seconds: dict[str, float], key: str) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            seconds[key] += time.perf_counter() - start

    return run


def torchattacks_default(
    net: nn.Module, x: Tensor, y: Tensor, eps: float, batch_size: int
) -> tuple[Tensor, dict[str, float]]:
    """Per-example correctness under torchattacks' own `AutoAttack` (what ladlit used until
    2026-12-01: its APGD-CE, APGD-T and FAB-T keep their 10-iteration defaults)."""
    import torchattacks

    attack = torchattacks.AutoAttack(net, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0)
    hits = [net(attack(xb, yb)).argmax(1) == yb for xb, yb in zip(x.split(batch_size), y.split(batch_size))]
    return torch.cat(hits).cpu(), {}


def compare(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    batch_size: int,
    device: torch.device,
    old: bool = False,
    workers: int = 1,
    warmup: int = 0,
) -> dict[str, Any]:
    """Both AutoAttacks on (x, y): accuracies, disagreeing example indices, seconds (total, per
    attack), the threads and processes each used; each runs on the first `warmup` examples first,
    untimed in the totals. With `old`, torchattacks' default AutoAttack too (its disagreements
    with the reference)."""
    threads = torch.get_num_threads()
    parallel = workers > 1 and device.type == "cpu"
    result: dict[str, Any] = {"n": len(y), "eps": eps, "seed": 0, "batch_size": batch_size}
    result |= {"threads": threads, "workers": workers}
    runs = {
        "ladlit": lambda xs, ys: ours(net, xs, ys, eps, batch_size, workers),
        "reference": lambda xs, ys: reference(net, xs, ys, eps, batch_size, device),
    }
    processes = {"ladlit": (workers, 1) if parallel else (1, threads), "reference": (1, threads)}
    if old:
        runs["torchattacks_default"] = lambda xs, ys: torchattacks_default(net, xs, ys, eps, batch_size)
        processes["torchattacks_default"] = (1, threads)
    if warmup:
        result["warmup"] = {"n": min(warmup, len(y)), "seconds": {}}
        for name, run in runs.items():
            start = time.perf_counter()
            run(x[:warmup], y[:warmup])
            result["warmup"]["seconds"][name] = time.perf_counter() - start
    hits = {}
    for name, run in runs.items():
        start = time.perf_counter()
        hits[name], split = run(x, y)
        result[name] = {
            "robust_acc": hits[name].float().mean().item(),
            "robust_examples": hits[name].nonzero().squeeze(1).tolist(),
            "seconds": time.perf_counter() - start,
            "split": split,
            "processes": processes[name][0],
            "threads_per_process": processes[name][1],
        }
    result["disagree"] = (hits["ladlit"] != hits["reference"]).nonzero().squeeze(1).tolist()
    if old:
        result["torchattacks_default"]["disagree"] = (
            (hits["torchattacks_default"] != hits["reference"]).nonzero().squeeze(1).tolist()
        )
    result["speedup"] = result["reference"]["seconds"] / max(result["ladlit"]["seconds"], 1e-9)  # reference / ladlit
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| implementation | processes x threads | robust acc (%) | seconds | " + " | ".join(REFERENCE_PARTS) + " |",
        "|---|---|---:|---:|" + "---:|" * len(REFERENCE_PARTS),
    ]
    for name in [n for n in ("ladlit", "reference", "torchattacks_default") if n in result]:
        r = result[name]
        split = " | ".join(f"{r['split'].get(p, 0.0):.1f}" for p in REFERENCE_PARTS)
        shape = f"{r['processes']} x {r['threads_per_process']}"
        lines.append(f"| {name} | {shape} | {100 * r['robust_acc']:.2f} | {r['seconds']:.1f} | {split} |")
    lines.append(
        f"\n{len(result['disagree'])} of {result['n']} examples disagree"
        + (f" (indices {result['disagree'][:20]})" if result["disagree"] else "")
        + f"; reference / ladlit time: {result['speedup']:.2f}x"
    )
    if "warmup" in result:
        spent = ", ".join(f"{k} {v:.1f} s" for k, v in result["warmup"]["seconds"].items())
        lines.append(f"warm-up, first {result['warmup']['n']} examples, untimed above: {spent}")
    if "torchattacks_default" in result:
        old = result["torchattacks_default"]["disagree"]
        lines.append(f"torchattacks' default AutoAttack disagrees with the reference on {len(old)} examples {old[:20]}")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    """The attack packages' versions (the reference's is the one the figures compare against)."""
    found = {}
    for package in ("torchattacks", "pyautoattack"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "-"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt", help="run directory or checkpoint")
    parser.add_argument("--n", type=int, default=500, help="first N test images")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--old", action="store_true", help="also run torchattacks' default AutoAttack (10 iterations)")
    parser.add_argument("--workers", type=int, default=1, help="ladlit's processes (CPU, one thread each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of this process (default: torch's)")
    parser.add_argument("--warmup", type=int, default=8, help="images each implementation attacks first, untimed")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    device = pick_device()
    measured_on = machine(device)
    net, x, y, eps = load_examples(args.ckpt, args.n, args.batch_size, device)
    print(
        header(
            "bench_autoattack",
            device,
            args.ckpt,
            f"n={len(y)}",
            f"eps {eps * 255:.4g}/255",
            f"threads {threads}",
            f"ladlit: workers {args.workers}",
            f"warm-up {args.warmup}",
        )
    )
    result = compare(net, x, y, eps, args.batch_size, device, args.old, args.workers, args.warmup)
    print(markdown(result))
    if args.json:
        write_record(args.json, measured_on, {"ckpt": args.ckpt, "versions": versions(), **result})


if __name__ == "__main__":
    main()
