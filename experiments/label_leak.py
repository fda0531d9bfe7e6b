"""Does a layer-wise model read the label out of its own perturbation? A label-leaking probe.

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
import copy

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn

from ladlit.defenses import Defense
from ladlit.evaluation.accuracy import first_examples
from ladlit.evaluation.checkpoint import load_model


def probe(path: str, n: int, batch: int) -> dict[str, float]:
    """Accuracies (fractions) of one checkpoint: clean, and the training forward's predictions
    against the true and the shifted labels when the perturbation follows the true or the shifted."""
    net, _, run, dataset_cfg = load_model(OmegaConf.create({"ckpt": path, "model": None, "dataset": None, "eps": None}))
    defense = instantiate(OmegaConf.create(run["defense"]))
    data = instantiate(dataset_cfg, eval_batch_size=batch)
    data.setup("test")
    x, y = first_examples(data.test_dataloader(), n, torch.device("cpu"))
    counts = dict.fromkeys(("clean", "true_given_true", "true_given_shifted", "shifted_given_shifted"), 0)
    for xb, yb in zip(x.split(batch), y.split(batch)):
        shifted = (yb + 1) % run["dataset"]["num_classes"]
        with torch.no_grad():
            counts["clean"] += (net.eval()(xb).argmax(1) == yb).sum().item()
        given_true, given_shifted = (training_predictions(defense, net, xb, labels) for labels in (yb, shifted))
        counts["true_given_true"] += (given_true == yb).sum().item()
        counts["true_given_shifted"] += (given_shifted == yb).sum().item()
        counts["shifted_given_shifted"] += (given_shifted == shifted).sum().item()
    return {k: v / len(y) for k, v in counts.items()}


def training_predictions(defense: Defense, net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The classes the defense's training forward predicts with its perturbations computed from
    labels y; on a copy in train mode, as in training (BatchNorm on batch statistics)."""
    return defense.training_loss(copy.deepcopy(net).train(), x, y).logits.argmax(1)


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
