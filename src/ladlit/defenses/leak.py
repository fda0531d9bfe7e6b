"""Label leaking of a layer-wise defense: does the network read the label out of its own
perturbation? LAD's hidden perturbations follow the adjoint of the loss at the label the batch
carries, so they carry that label, and a network can learn to decode it (as Kurakin et al. 2017
found for single-step adversarial training); its training accuracy then climbs while its clean
accuracy falls (experiments/RESULTS.md, 6.7). The probe runs the defense's own training forward
with every label shifted by one class: a network that does not leak almost never predicts the
shifted label (the study's healthy runs: 1.6-5.1 %), a leaking one follows it (31-41 %). A network
that has not learned anything predicts it about as often as chance, with or without the
perturbation, so the guard's statistic is the excess over the network's own clean prediction.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from ladlit.defenses.base import Defense


def shifted(y: Tensor, num_classes: int) -> Tensor:
    """Every label moved to the next class."""
    return (y + 1) % num_classes


def training_predictions(defense: Defense, net: nn.Module, x: Tensor, y: Tensor, seed: int = 0) -> Tensor:
    """The classes the defense's training forward predicts with its perturbations computed from
    labels y; on a copy in train mode, as in training (BatchNorm on batch statistics), so the
    network and its running statistics are left as they were. Its random starts are drawn from
    `seed`, so a checkpoint gives the same figure whatever ran before (AutoAttack reseeds the
    global generator); the global RNG is left as it was."""
    probe = copy.deepcopy(net).train()
    try:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return defense.training_loss(probe, x, y).logits.argmax(1).detach()
    finally:
        defense.forget(probe)


def label_leak(
    defense: Defense, net: nn.Module, x: Tensor, y: Tensor, num_classes: int, batch: int = 100
) -> dict[str, float]:
    """Shares of (x, y): clean accuracy, and the training forward's predictions of the true label
    given the true one, of the true label given the shifted one, of the shifted label given the
    shifted one (the leak)."""
    counts = dict.fromkeys(("clean", "true_given_true", "true_given_shifted", "shifted_given_shifted"), 0)
    was_training = net.training
    for i, (xb, yb) in enumerate(zip(x.split(batch), y.split(batch))):
        other = shifted(yb, num_classes)
        with torch.no_grad():
            counts["clean"] += int((net.eval()(xb).argmax(1) == yb).sum())
        # the same random starts for both labels of a batch: the two predictions differ by the label only
        given_true, given_shifted = (training_predictions(defense, net, xb, labels, seed=i) for labels in (yb, other))
        counts["true_given_true"] += int((given_true == yb).sum())
        counts["true_given_shifted"] += int((given_shifted == yb).sum())
        counts["shifted_given_shifted"] += int((given_shifted == other).sum())
    net.train(was_training)
    return {k: v / max(len(y), 1) for k, v in counts.items()}


def leak_excess(defense: Defense, net: nn.Module, x: Tensor, y: Tensor, num_classes: int) -> float:
    """How much more often the training forward, its perturbations computed from shifted labels,
    predicts those labels than the network's clean prediction (eval mode) is them."""
    other = shifted(y, num_classes)
    was_training = net.training
    with torch.no_grad():
        clean = net.eval()(x).argmax(1)
    net.train(was_training)
    followed = (training_predictions(defense, net, x, other) == other).float().mean().item()
    return followed - (clean == other).float().mean().item()


def leak_threshold(num_classes: int, n: int) -> float:
    """Three standard errors of a share near chance (1 / classes) on `n` images: an excess a network
    that ignores the labels it is handed exceeds about once in 700 validations."""
    p = 1 / num_classes
    return 3 * math.sqrt(p * (1 - p) / n)
