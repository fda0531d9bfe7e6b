"""PGD-AT vs LAD vs LAD-SM on real CIFAR-10 (the cifar10-jpeg tarball), same seed and budget.

Each defense trains the same model from the same seed on the same images, then the best
checkpoint (robust validation accuracy) is tested clean and under PGD-20. Defaults fit a
CPU; pass Hydra overrides for a longer run:

    python experiments/compare_defenses.py                       # CPU-sized defaults below
    python experiments/compare_defenses.py dataset.train_subset=null trainer.max_epochs=30
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from ladlit.config import compose_config
from ladlit.train import train

REPO = Path(__file__).resolve().parents[1]
CPU_DEFAULTS = [
    "dataset=cifar10_jpeg",
    "model=resnet20",
    "dataset.train_subset=2560",
    "dataset.val_size=256",
    "dataset.test_subset=1000",
    "trainer.max_epochs=3",
    "scheduler=cosine",
    "optimizer.lr=0.05",
]


def run(defense: str, overrides: list[str], out_root: Path) -> dict[str, float]:
    cfg = compose_config("train", [f"defense={defense}", *CPU_DEFAULTS, *overrides], output_dir=out_root / defense)
    start = time.time()
    metrics = train(cfg)
    return {**metrics, "minutes": (time.time() - start) / 60}


def main() -> None:
    overrides = sys.argv[1:]
    out_root = REPO / "outputs" / "compare_defenses" / time.strftime("%Y-%m-%d_%H-%M-%S")
    rows = {d: run(d, overrides, out_root) for d in ("pgd", "lad", "lad_sm")}
    print(f"\n# compare_defenses {date.today()} | overrides: {' '.join(CPU_DEFAULTS + overrides)}\n")
    print("| defense | clean (%) | PGD-20 (%) | wall (min) |")
    print("|---|---:|---:|---:|")
    for d, m in rows.items():
        print(f"| {d} | {100 * m['test/acc_clean']:.1f} | {100 * m['test/acc_pgd20']:.1f} | {m['minutes']:.1f} |")


if __name__ == "__main__":
    main()
