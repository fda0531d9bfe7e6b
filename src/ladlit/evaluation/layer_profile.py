"""How fragile each hidden layer is: accuracy when one residual block's output is pushed along
its own adjoint.

For block j and relative size r, the block's output z_j becomes z_j + r * N(a_j), with
a_j = dL/dz_j the adjoint of the summed cross-entropy at the clean input and N the rms
normalisation of the layer-wise defense (docs/method.md, section 6): the perturbation's rms is
r times the state's. It is the one-step, single-layer version of what LAD trains against, so a
model that the layer-wise defense made robust inside should hold its accuracy to larger r.
The input is never perturbed, and r = 0 is the clean accuracy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ladlit.checks import check_bool, check_list, check_non_negative
from ladlit.data import to_unit_float
from ladlit.defenses.hooks import AdjointInjector
from ladlit.defenses.layerwise import normalize_adjoint
from ladlit.evaluation.accuracy import first_batches
from ladlit.evaluation.extra import ExtraEvaluation, Subject
from ladlit.models import find_residual_blocks
from ladlit.tables import markdown_table

DEFAULT_SIZES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5)


def layer_profile(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    device: torch.device,
    sizes: Sequence[float] = DEFAULT_SIZES,
    n_examples: int | None = None,
) -> dict[str, dict[str, float]]:
    """{"block00": {"0.0": acc, "0.02": acc, ...}, ...} over the first `n_examples` examples."""
    model.eval().to(device)
    hits = torch.zeros(len(find_residual_blocks(model)), len(sizes))
    seen = 0
    with contextlib.closing(AdjointInjector(find_residual_blocks(model))) as injector:
        for x, y in first_batches(batches, n_examples):
            hits += _batch_hits(model, injector, to_unit_float(x.to(device)), y.to(device), sizes)
            seen += len(y)
    accuracy = (hits / max(seen, 1)).tolist()
    return {f"block{j:02d}": {str(float(r)): acc for r, acc in zip(sizes, row)} for j, row in enumerate(accuracy)}


def _batch_hits(model: nn.Module, injector: AdjointInjector, x: Tensor, y: Tensor, sizes: Sequence[float]) -> Tensor:
    """Correct predictions per (block, size) on one batch."""
    injector.reset()
    with torch.enable_grad():
        loss = F.cross_entropy(injector.forward(model, capture=True, inject=False)(x), y, reduction="sum")
        injector.receive(torch.autograd.grad(loss, injector.leaves()))  # every block's adjoints
    directions = [normalize_adjoint(state.a["out"], state.z["out"], "rms") for state in injector.states]
    hits = torch.zeros(len(injector.states), len(sizes))
    perturbed = injector.forward(model, capture=False, inject=True)
    with torch.no_grad():
        for j, state in enumerate(injector.states):
            for k, r in enumerate(sizes):
                state.p["out"] = r * directions[j]
                hits[j, k] = (perturbed(x).argmax(1) == y).sum()
            del state.p["out"]
    return hits


class LayerProfile(ExtraEvaluation):
    """`layer_profile` on the evaluated examples, at relative sizes `sizes` (off unless `enabled`)."""

    name = "layer_profile"

    def __init__(self, enabled: bool = False, sizes: Sequence[float] = DEFAULT_SIZES) -> None:
        self.enabled = check_bool("enabled", enabled)
        self.sizes = [float(check_non_negative("sizes", r)) for r in check_list("sizes", sizes)]

    def run(self, subject: Subject) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        profile = layer_profile(subject.net, subject.batches, subject.device, self.sizes, subject.n_examples)
        return self.entry(subject.n_examples, profile)

    @classmethod
    def markdown(cls, key: str, entry: Mapping[str, Any]) -> str:
        profile = entry[cls.name]
        sizes = list(next(iter(profile.values())))
        table = [(block, *(f"{100 * accs[r]:.1f}" for r in sizes)) for block, accs in profile.items()]
        return (
            f"## Layer profile ({key}): accuracy (%) with one block's output pushed along its adjoint, relative size r\n\n"
            + markdown_table(["block", *(f"r={r}" for r in sizes)], table, right=range(1, len(sizes) + 1))
        )
