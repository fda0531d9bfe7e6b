"""Evaluation cost on one checkpoint: wall time of each attack on the same test images, and our
PGD-20 against the AutoAttack library's APGD-CE (torchattacks, as AutoAttack runs it: 100
iterations, 1 restart), with the accuracy each reaches.

    python experiments/bench_eval.py outputs/<run> --n-examples 1000
"""

from __future__ import annotations

import argparse
import time

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ladlit.attacks import FGSM, PGD, Attack, AutoAttack
from ladlit.checkpoints import find_checkpoint, load_checkpoint, load_weights, net_state_dict
from ladlit.evaluation import first_examples

from benchlib import header, pick_device


class APGDCE(Attack):
    """torchattacks' APGD with the CE loss, as the first stage of standard AutoAttack."""

    def perturb(self, model, x, y):
        import torchattacks

        return torchattacks.APGD(model, norm="Linf", eps=self.eps, steps=100, n_restarts=1, loss="ce", seed=0)(x, y)


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
    x, y = first_examples(dm.test_dataloader(), args.n_examples, device)
    eps = run.eps
    attacks = {"fgsm": FGSM(eps), "pgd20 (ours)": PGD(eps, steps=20), "cw (ours, 20 steps)": PGD(eps, steps=20, loss="margin"), "apgd-ce (torchattacks, 100 its)": APGDCE(eps)}
    if args.autoattack:
        attacks["autoattack standard (torchattacks)"] = AutoAttack(eps)
    print(header("bench_eval", device, str(path), f"{len(y)} images", f"eps {eps * 255:.1f}/255"))
    print("| attack | accuracy (%) | seconds |")
    print("|---|---:|---:|")
    with torch.no_grad():
        clean = sum(int((net(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(args.batch_size), y.split(args.batch_size)))
    print(f"| clean | {100 * clean / len(y):.1f} | - |")
    for label, attack in attacks.items():
        torch.manual_seed(0)
        start, correct = time.perf_counter(), 0
        for xb, yb in zip(x.split(args.batch_size), y.split(args.batch_size)):
            x_adv = attack(net, xb, yb)
            with torch.no_grad():
                correct += int((net(x_adv).argmax(1) == yb).sum())
        print(f"| {label} | {100 * correct / len(y):.1f} | {time.perf_counter() - start:.1f} |", flush=True)


if __name__ == "__main__":
    main()
