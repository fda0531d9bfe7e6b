"""AutoAttack (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020), L-inf.

`version="standard"` runs APGD-CE, APGD-T, FAB-T and Square, each on the examples the previous
ones left robust (misclassified clean examples are never attacked); `version="rand"` is the
variant for randomised models (APGD-CE and APGD-DLR with expectation over 20 transformations).
The four attacks come from `torchattacks`, configured as the reference implementation
(fra31/auto-attack) configures them: 100 iterations for APGD-CE, APGD-T and FAB-T, 9 target
classes, Square with 5,000 queries and no rescaled schedule. torchattacks' own `AutoAttack`
leaves its attacks at their 10-iteration defaults, a weaker attack than the one papers report
(experiments/RESULTS.md, section 4), so the composition is ours.

Speed (RESULTS 4.3): the attacks run on `attack_forward`'s copy of the model (BatchNorm folded,
channels-last), and a candidate counts only if it fools the model itself. On a CPU, `workers=2`
runs each component on two halves of the examples it attacks, in two single-threaded processes.

>>> x_adv = AutoAttack(eps=8/255)(model, x, y)
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import torch
from torch import Tensor, nn

from ladlit.attacks.base import Attack
from ladlit.attacks.fast_forward import attack_forward
from ladlit.attacks.worker import STATE, WorkerPool

ITERATIONS = 100  # APGD-CE, APGD-T and FAB-T, as in the reference
TARGET_CLASSES = 9  # APGD-T's and FAB-T's target classes (the reference uses 9 for any dataset)
SQUARE_QUERIES = 5000
EOT_ITERATIONS = 20  # version "rand": gradient samples per APGD step


class AutoAttack(Attack):
    """Standard (or `rand`) AutoAttack; `n_classes` is read off the model when None.

    `seconds` accumulates each component attack's wall time over calls (for the evaluation
    record). `workers` > 1 splits each component's examples over that many single-threaded
    processes (CPU only).
    """

    SPEED_ONLY = ("workers",)

    def __init__(
        self,
        eps: float = 8 / 255,
        version: str = "standard",
        n_classes: int | None = None,
        seed: int = 0,
        workers: int = 1,
    ) -> None:
        super().__init__(eps)
        if version not in ("standard", "rand"):
            raise ValueError(f"attack version must be 'standard' or 'rand', got {version!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"attack workers must be a whole number >= 1, got {workers!r}")
        self.version, self.n_classes, self.seed, self.workers = version, n_classes, seed, workers
        self.seconds: dict[str, float] = defaultdict(float)

    def components(self, model: nn.Module, n_classes: int) -> list[tuple[str, nn.Module]]:
        """The attacks of this version in the reference's order, as the reference configures them."""
        import torchattacks

        common = {"norm": "Linf", "eps": self.eps, "seed": self.seed}
        if self.version == "rand":
            return [
                (
                    name,
                    torchattacks.APGD(
                        model, loss=loss, steps=ITERATIONS, n_restarts=1, eot_iter=EOT_ITERATIONS, **common
                    ),
                )
                for name, loss in (("apgd-ce", "ce"), ("apgd-dlr", "dlr"))
            ]
        targets = min(TARGET_CLASSES, n_classes - 1)
        apgd_t = torchattacks.APGDT(model, steps=ITERATIONS, n_restarts=1, n_classes=n_classes, **common)
        fab_t = torchattacks.FAB(
            model, steps=ITERATIONS, n_restarts=1, multi_targeted=True, n_classes=n_classes, **common
        )
        apgd_t.n_target_classes = fab_t.n_target_classes = targets
        return [
            ("apgd-ce", torchattacks.APGD(model, loss="ce", steps=ITERATIONS, n_restarts=1, **common)),
            ("apgd-t", apgd_t),
            ("fab-t", fab_t),
            (
                "square",
                torchattacks.Square(
                    model, n_queries=SQUARE_QUERIES, n_restarts=1, p_init=0.8, resc_schedule=False, **common
                ),
            ),
        ]

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            logits = model(x)
        robust, n_classes, x_adv = logits.argmax(1) == y, self.n_classes or logits.shape[1], x.clone()
        parallel = self.workers > 1 and x.device.type == "cpu"
        with WorkerPool(self.workers) if parallel else contextlib.nullcontext() as pool:
            if pool is None:
                attacked = attack_forward(model)
            else:
                pool.map(_hold_model, [(model,)] * self.workers)
            for name in self.names():
                idx = robust.nonzero().squeeze(1)
                if idx.numel() == 0:
                    break
                start = time.perf_counter()
                if pool is None:
                    candidate, fooled = self.run_component(name, model, attacked, x[idx], y[idx], n_classes)
                else:  # each worker takes a slice of the examples this component attacks
                    parts = [idx[part] for part in worker_slices(len(idx), self.workers)]
                    answers = pool.map(_run_component, [(self, name, x[i], y[i], n_classes) for i in parts])
                    candidate, fooled = (torch.cat(column) for column in zip(*answers))
                x_adv[idx[fooled]] = candidate[fooled]
                robust[idx[fooled]] = False
                self.seconds[name] += time.perf_counter() - start
        return x_adv

    def names(self) -> list[str]:
        """The component attacks of this version, in order."""
        return ["apgd-ce", "apgd-dlr"] if self.version == "rand" else ["apgd-ce", "apgd-t", "fab-t", "square"]

    def run_component(
        self, name: str, model: nn.Module, attacked: nn.Module, x: Tensor, y: Tensor, n_classes: int
    ) -> tuple[Tensor, Tensor]:
        """Component `name` run on `attacked` (the fast copy); its candidates and which of them fool
        `model` itself, the only ones that count."""
        candidate = dict(self.components(attacked, n_classes))[name](x, y)
        with torch.no_grad():
            return candidate, model(candidate).argmax(1) != y


def worker_slices(n: int, workers: int) -> list[slice]:
    """Contiguous, as even as possible, non-empty: how `workers` processes share n examples."""
    parts = min(workers, n)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _hold_model(model: nn.Module) -> None:
    STATE["model"], STATE["attacked"] = model.eval(), attack_forward(model)


def _run_component(attack: AutoAttack, name: str, x: Tensor, y: Tensor, n_classes: int) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        return attack.run_component(name, STATE["model"], STATE["attacked"], x, y, n_classes)
