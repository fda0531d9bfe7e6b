"""PGD-20 accuracy at several eps: it should fall towards zero as eps grows. A curve that stays
up at 16/255 or beyond suggests gradient masking rather than robustness (Carlini et al. 2019)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ladlit.attacks import PGD
from ladlit.checks import check_list, check_pixel_budget
from ladlit.evaluation.accuracy import evaluate
from ladlit.evaluation.extra import ExtraEvaluation, Subject
from ladlit.records import WORST


class EpsSweep(ExtraEvaluation):
    """PGD-20 accuracy at each eps of `eps` ([]: off)."""

    name = "eps_sweep"

    def __init__(self, eps: Sequence[float] = ()) -> None:
        self.eps = [check_pixel_budget("eps", e) for e in check_list("eps", eps)]

    def run(self, subject: Subject) -> dict[str, Any] | None:
        if not self.eps:
            return None
        attacks = {f"{e:.6f}": PGD(eps=e, steps=20) for e in self.eps}
        sweep, _ = evaluate(subject.net, subject.batches, attacks, subject.device, subject.n_examples)
        return self.entry(subject.n_examples, {float(e): a for e, a in sweep.items() if e not in ("clean", WORST)})

    @classmethod
    def markdown(cls, key: str, entry: Mapping[str, Any]) -> str:
        points = sorted(entry[cls.name].items(), key=lambda kv: float(kv[0]))
        return (
            f"PGD-20 accuracy vs eps ({key}): "
            + ", ".join(f"{float(e) * 255:.0f}/255: {100 * a:.1f}%" for e, a in points)
            + "\n"
        )
