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

from ladlit.checkpoints import find_checkpoint, load_checkpoint, load_weights, net_state_dict
from ladlit.evaluation.accuracy import first_examples


def probe(path: str, n: int, batch: int) -> dict[str, float]:
    """Accuracies (fractions) of one checkpoint: clean, and the training forward's predictions
    against the true and the shifted labels when the perturbation follows the true or the shifted."""
    ckpt_path = find_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path)
    run = ckpt["hyper_parameters"]["run_config"]
    net = instantiate(OmegaConf.create(run["model"]))
    load_weights(net, net_state_dict(ckpt), source=str(ckpt_path))
    defense = instantiate(OmegaConf.create(run["defense"]))
    data = instantiate(OmegaConf.create(run["dataset"]), eval_batch_size=batch)
    data.setup("test")
    x, y = first_examples(data.test_dataloader(), n, torch.device("cpu"))
    counts = dict.fromkeys(("clean", "true_given_true", "true_given_shifted", "shifted_given_shifted"), 0)
    for xb, yb in zip(x.split(batch), y.split(batch)):
        shifted = (yb + 1) % run["dataset"]["num_classes"]
        with torch.no_grad():
            counts["clean"] += (net.eval()(xb).argmax(1) == yb).sum().item()
        for given in (yb, shifted):
            model = copy.deepcopy(net).train()  # as in training (BatchNorm on batch statistics); the copy keeps net's
            predicted = defense.training_loss(model, xb, given).logits.argmax(1)
            if given is yb:
                counts["true_given_true"] += (predicted == yb).sum().item()
            else:
                counts["true_given_shifted"] += (predicted == yb).sum().item()
                counts["shifted_given_shifted"] += (predicted == shifted).sum().item()
    return {k: v / len(y) for k, v in counts.items()}


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
