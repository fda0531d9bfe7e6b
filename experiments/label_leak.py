"""Does a layer-wise model read the label out of its own perturbation? The label-leak probe
(`ladlit.defenses.leak`; for one checkpoint also `python -m ladlit.eval ckpt=... label_leak=true`)
over several checkpoints, one markdown row each.

    python experiments/label_leak.py <run dir or .ckpt> [...] [--n 1000] [--batch 100]

LAD's hidden perturbation p_j = eta * N(a_j) follows the adjoint of the loss at the true label y,
so it carries y. A model can learn to decode it (label leaking, as Kurakin et al. 2017 found for
single-step adversarial training): its accuracy on the perturbed training forward then rises while
its clean accuracy falls. The probe runs the defense's own training forward (the PGD inner loop
with injection, then the injected forward whose logits train/acc counts) on test images twice:
with the true labels, and with every label shifted by one class. A model that does not leak
predicts the true class about equally often either way and almost never the shifted one; a
leaking model follows the label it is given. Prints one markdown row per checkpoint.
"""

from __future__ import annotations

import argparse

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ladlit.checkpoints import load_model
from ladlit.defenses.leak import label_leak
from ladlit.evaluation.accuracy import first_examples


def probe(path: str, n: int, batch: int) -> dict[str, float]:
    """`ladlit.defenses.leak.label_leak` of one checkpoint on its first `n` test images."""
    net, _, run, dataset_cfg, _ = load_model(
        OmegaConf.create({"ckpt": path, "model": None, "dataset": None, "eps": None})
    )
    defense = instantiate(OmegaConf.create(run["defense"]))
    data = instantiate(dataset_cfg, eval_batch_size=batch)
    data.setup("test")
    x, y = first_examples(data.test_dataloader(), n, torch.device("cpu"))
    return label_leak(defense, net, x, y, run["dataset"]["num_classes"], batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--n", type=int, default=1000, help="test images")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        "| checkpoint | clean | training forward, true label: predicts it "
        "| label shifted: predicts the true one | label shifted: predicts the shifted one |"
    )
    print("|---|---:|---:|---:|---:|")
    for path in args.checkpoints:
        a = probe(path, args.n, args.batch)
        print(
            f"| {path} | {100 * a['clean']:.1f} | {100 * a['true_given_true']:.1f} "
            f"| {100 * a['true_given_shifted']:.1f} | {100 * a['shifted_given_shifted']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
