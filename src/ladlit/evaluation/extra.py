"""The evaluations `ladlit.eval` runs besides accuracy under attack: one small protocol.

An extra evaluation is a class with a `name`, a `run` on the evaluated model and its test
examples that returns a record entry, and a `markdown` rendering of that entry for metrics.md.
`conf/eval.yaml` lists them under `evaluations` (a node each); adding one is one new file and one
line of config (docs/extending.md). The entry names its class, so metrics.md renders it in any
later process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from hydra.utils import get_class
from torch import Tensor, nn

EVALUATION = "evaluation"  # the entry's field naming its class

# records written before entries named their class: the field each wrote -> its class
_BEFORE_NAMED = {
    "eps_sweep": "ladlit.evaluation.eps_sweep.EpsSweep",
    "sanity": "ladlit.evaluation.sanity.Checklist",
    "label_leak": "ladlit.evaluation.label_leak.LabelLeakProbe",
    "layer_profile": "ladlit.evaluation.layer_profile.LayerProfile",
}


@dataclass
class Subject:
    """What an extra evaluation runs on: the network, the test examples, what is known of them."""

    net: nn.Module
    batches: Iterable[tuple[Tensor, Tensor]]
    device: torch.device
    n_examples: int
    eps: float
    run_config: Mapping[str, Any] = field(default_factory=dict)  # {} for a plain state_dict
    outcomes: Mapping[str, Tensor] = field(default_factory=dict)  # attack -> per-example correctness, first n


class ExtraEvaluation(ABC):
    """One evaluation beyond accuracy under attack."""

    name: ClassVar[str]  # the record key's kind ("best.ckpt | <name> | eps | n") and the entry's field

    @abstractmethod
    def run(self, subject: Subject) -> dict[str, Any] | None:
        """The record entry: `n_examples`, `eps` if it was measured at one, and `{name: result}`;
        None when configured off (nothing is recorded)."""

    @classmethod
    @abstractmethod
    def markdown(cls, key: str, entry: Mapping[str, Any]) -> str:
        """The entry's section of metrics.md (a class method: rendering needs no configuration)."""

    def entry(self, n_examples: int, result: Any, eps: float | None = None) -> dict[str, Any]:
        """A record entry for `result`, naming this class."""
        return {
            EVALUATION: f"{type(self).__module__}.{type(self).__qualname__}",
            "n_examples": n_examples,
            **({} if eps is None else {"eps": eps}),
            self.name: result,
        }


def render(key: str, entry: Mapping[str, Any]) -> str | None:
    """The metrics.md section of an extra evaluation's entry; None for an entry of accuracies."""
    target = entry.get(EVALUATION) or next((t for f, t in _BEFORE_NAMED.items() if entry.get(f)), None)
    if target is None:
        return None
    try:
        evaluation = get_class(target)
    except Exception:  # noqa: BLE001 - a class of another installation: the record stays readable
        return f"## {key}\n\nRecorded by `{target}`, which does not import here: see metrics.json.\n"
    return evaluation.markdown(key, entry)
