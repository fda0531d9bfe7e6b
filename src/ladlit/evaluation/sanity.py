"""A gradient-masking checklist that runs with every evaluation.

Robust accuracy measured by gradient attacks can be inflated by gradient masking (Athalye et
al. 2018). These checks follow Carlini et al., "On Evaluating Adversarial Robustness" (2019),
and AutoAttack's own flags; each prints pass/fail with the figures behind it. A fail does not
prove masking, but a claim should not be published past one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ladlit.attacks import FGSM, PGD, Attack, Square, correct, worst_case
from ladlit.checks import check_positive_int
from ladlit.console import console
from ladlit.evaluation.accuracy import first_examples
from ladlit.evaluation.extra import ExtraEvaluation, Subject
from ladlit.tables import markdown_table


@dataclass
class Check:
    """One item of the checklist."""

    name: str
    passed: bool
    detail: str


def seeded_correct(model: nn.Module, x: Tensor, y: Tensor, attack: Attack | None = None, seed: int = 0) -> Tensor:
    """Per-example correctness on (x, y), under `attack` if given, with the attack's randomness seeded."""
    torch.manual_seed(seed)
    return correct(model, x, y, attack)


def accuracy(model: nn.Module, x: Tensor, y: Tensor, attack: Attack | None = None, seed: int = 0) -> float:
    """Accuracy on (x, y), under `attack` if given, with the attack's randomness seeded."""
    return seeded_correct(model, x, y, attack, seed).float().mean().item()


AUTOATTACK_SLACK = 0.01  # AutoAttack may sit this far above the white-box worst case (one point) before it is flagged


def gradient_masking_checklist(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    large_eps: float = 64 / 255,
    large_eps_max_accuracy: float = 0.1,
    square_queries: int = 1000,
    long_steps: int = 100,
    restarts: int = 5,
    tolerance: float | None = None,
    autoattack: Tensor | None = None,
) -> list[Check]:
    """Run the checklist on (x, y): PGD-20 is compared with FGSM, with PGD-`long_steps` and with
    `restarts` restarts; Square and, if its per-example outcome on these examples is given,
    AutoAttack with the white-box attacks' per-example worst case. `tolerance` (default: one
    example or 1 %, the larger) absorbs the randomness of attacks with random starts."""
    model.eval()
    tol = tolerance if tolerance is not None else max(1.0 / len(y), 0.01)
    acc: Callable[[Attack | None], float] = lambda attack: accuracy(model, x, y, attack)
    clean_hits = seeded_correct(model, x, y)
    clean = clean_hits.float().mean().item()
    with torch.no_grad():
        deterministic = torch.equal(model(x), model(x))
    eps0 = acc(PGD(eps=0.0, steps=5))
    white = [  # (name, per-example outcome): a list, as PGD-20 and PGD-`long_steps` may share a name
        ("FGSM", seeded_correct(model, x, y, FGSM(eps=eps))),
        ("PGD-20", seeded_correct(model, x, y, PGD(eps=eps, steps=20))),
        (f"PGD-{long_steps}", seeded_correct(model, x, y, PGD(eps=eps, steps=long_steps))),
        (f"PGD-20 x{restarts}", seeded_correct(model, x, y, PGD(eps=eps, steps=20, restarts=restarts))),
    ]
    fgsm, pgd20, pgd_long, pgd_restarts = (hit.float().mean().item() for _, hit in white)
    white_box = worst_case(clean_hits, (hit for _, hit in white)).float().mean().item()
    sweep = {e: pgd20 if e == eps else acc(PGD(eps=e, steps=20)) for e in (eps / 4, eps / 2, eps, 2 * eps)}
    large = acc(PGD(eps=large_eps, steps=20))
    square = acc(Square(eps=eps, n_queries=square_queries))
    curve = [clean, *sweep.values()]
    pct = lambda v: f"{100 * v:.1f}%"
    white_name = f"white-box worst case (per example, clean + {' + '.join(name for name, _ in white)})"
    checks = [
        Check(
            "eps=0 equals clean accuracy", abs(eps0 - clean) <= 1e-9, f"clean {pct(clean)}, PGD at eps=0 {pct(eps0)}"
        ),
        Check(
            "accuracy non-increasing in eps",
            all(b <= a + tol for a, b in zip(curve, curve[1:])),
            "; ".join(f"eps={e * 255:.1f}/255: {pct(a)}" for e, a in [(0.0, clean), *sweep.items()]),
        ),
        Check("iterative no weaker than single-step", pgd20 <= fgsm + tol, f"PGD-20 {pct(pgd20)} vs FGSM {pct(fgsm)}"),
        Check(
            "more steps / restarts never raise accuracy",
            pgd_long <= pgd20 + tol and pgd_restarts <= pgd20 + tol,
            f"PGD-20 {pct(pgd20)}, PGD-{long_steps} {pct(pgd_long)}, PGD-20 x{restarts} restarts {pct(pgd_restarts)}",
        ),
        Check(
            f"large eps ({large_eps * 255:.0f}/255) drives accuracy to ~0",
            large <= large_eps_max_accuracy,
            f"PGD-20 at {large_eps * 255:.0f}/255: {pct(large)} (must be <= {pct(large_eps_max_accuracy)})",
        ),
        Check(
            "black-box no stronger than white-box",
            square >= white_box - tol,
            f"Square ({square_queries} queries) {pct(square)} vs {white_name} {pct(white_box)}",
        ),
        Check(
            "deterministic in eval mode",
            deterministic,
            "two forward passes " + ("agree" if deterministic else "differ"),
        ),
    ]
    if autoattack is not None:
        auto = autoattack.float().mean().item()
        checks.append(
            Check(
                "AutoAttack no weaker than the white-box worst case",
                auto <= white_box + AUTOATTACK_SLACK,
                f"AutoAttack {pct(auto)} vs {white_name} {pct(white_box)} (flagged above +{100 * AUTOATTACK_SLACK:.0f} point)",
            )
        )
    return checks


def format_checklist(checks: list[Check]) -> str:
    """Markdown lines, one per check."""
    return markdown_table(
        ["check", "result", "figures"], [(c.name, "pass" if c.passed else "**FAIL**", c.detail) for c in checks]
    )


class Checklist(ExtraEvaluation):
    """The gradient-masking checklist on the first `n_examples` test examples (0: off); given
    AutoAttack's per-example outcome from the same evaluation, it checks that too."""

    name = "sanity"

    def __init__(self, n_examples: int = 200) -> None:
        self.n_examples = n_examples and check_positive_int("n_examples", n_examples)

    def run(self, subject: Subject) -> dict[str, Any] | None:
        if not self.n_examples:
            return None
        x, y = first_examples(subject.batches, min(self.n_examples, subject.n_examples), subject.device)
        autoattack = subject.outcomes.get("autoattack")
        checks = gradient_masking_checklist(
            subject.net,
            x,
            y,
            eps=subject.eps,
            autoattack=None if autoattack is None else autoattack[: len(y)].to(subject.device),
        )
        console.print(format_checklist(checks), highlight=False, soft_wrap=True)
        return self.entry(len(y), [vars(c) for c in checks], eps=subject.eps)

    @classmethod
    def markdown(cls, key: str, entry: Mapping[str, Any]) -> str:
        checks = [Check(**c) for c in entry[cls.name]]
        return f"## Gradient-masking checks ({key})\n\n" + format_checklist(checks)
