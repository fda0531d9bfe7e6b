"""What an attack does to each example: correct or fooled, and the field's worst case over attacks.

Robust accuracy as AutoAttack and RobustBench define it counts an example as robust only if it
survives every attack that was run, so the worst case is taken per example (`all` over attacks),
never as the minimum of the attacks' accuracies, which can be well above it.
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


def worst_case(hits: Iterable[Tensor]) -> Tensor:
    """Per example: correct under every attack (the logical and of their correctness masks)."""
    masks = list(hits)
    if not masks:
        raise ValueError("the worst case needs at least one attack's outcome")
    return torch.stack(masks).all(0)
