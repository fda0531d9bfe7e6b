"""Evaluation cost on one checkpoint: wall time of each attack on the same test images, and our
PGD-20 against the AutoAttack library's APGD-CE (torchattacks, as AutoAttack runs it: 100
iterations, 1 restart), with the accuracy each reaches.

    python experiments/bench_eval.py outputs/<run> --n-examples 1000
"""

from __future__ import annotations

import argparse

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from benchlib import header, pick_device
from ladlit.attacks import APGDCE, FGSM, PGD, AutoAttack
from ladlit.checkpoints import find_checkpoint, load_checkpoint, load_weights, net_state_dict
from ladlit.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory or checkpoint")
    parser.add_argument("--n-examples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--autoattack", action="store_true", help="also time full standard AutoAttack")
    args = parser.parse_args()
    path = find_checkpoint(args.run)
    ckpt = load_checkpoint(path)
    run = OmegaConf.create(ckpt["hyper_parameters"]["run_config"])
    net = instantiate(run.model)
    load_weights(net, net_state_dict(ckpt), str(path))
    device = pick_device()
    net.eval().to(device)
    dm = instantiate(run.dataset, eval_batch_size=args.batch_size)
    dm.setup("test")
    eps = run.eps
    attacks = {
        "fgsm": FGSM(eps),
        "pgd20 (ours)": PGD(eps, steps=20),
        "cw (ours, 20 steps)": PGD(eps, steps=20, loss="margin"),
        "apgd-ce (torchattacks, 100 its)": APGDCE(eps, steps=100),
    }
    if args.autoattack:
        attacks["autoattack standard (torchattacks)"] = AutoAttack(eps)
    print(header("bench_eval", device, str(path), f"{args.n_examples} images", f"eps {eps * 255:.1f}/255"))
    print("| attack | accuracy (%) | seconds |")
    print("|---|---:|---:|")
    for label, attack in attacks.items():
        torch.manual_seed(0)
        seconds: dict[str, float] = {}
        accuracy, _ = evaluate(net, dm.test_dataloader(), {label: attack}, device, args.n_examples, seconds)
        print(f"| {label} | {100 * accuracy[label]:.1f} | {seconds[label]:.1f} |", flush=True)
    print(f"| clean | {100 * accuracy['clean']:.1f} | - |")


if __name__ == "__main__":
    main()
