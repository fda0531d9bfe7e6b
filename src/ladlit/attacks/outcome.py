"""What an attack does to each example: correct or fooled, and the field's worst case over attacks.

Robust accuracy as AutoAttack and RobustBench define it counts an example as robust only if it
is classified correctly clean and survives every attack that was run, so the worst case is taken
per example (`all` over the clean prediction and the attacks), never as the minimum of the attacks'
accuracies, which can be well above it. The clean prediction matters where an attack "repairs" a
misclassified example: rare under PGD, but exactly what a label-leaking or gradient-masked model
does (FGSM accuracy above clean accuracy is the symptom).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ladlit.attacks.base import Attack


def correct(model: nn.Module, x: Tensor, y: Tensor, attack: Attack | None = None) -> Tensor:
    """Per-example correctness (bool) of `model` on (x, y), under `attack` if given."""
    x_eval = x if attack is None else attack(model, x, y)
    with torch.no_grad():
        return model(x_eval).argmax(1) == y


def worst_case(clean: Tensor, hits: Iterable[Tensor]) -> Tensor:
    """Per example: correct on the clean image and under every attack (the logical and of the
    clean correctness mask and the attacks')."""
    masks = list(hits)
    if not masks:
        raise ValueError("the worst case needs at least one attack's outcome")
    return torch.stack([clean, *masks]).all(0)
