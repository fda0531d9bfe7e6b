"""Figures and tables of the depth series (experiments/RESULTS.md, section 10), from the committed
records alone.

    python experiments/depth_figures.py [experiments/results/cpu_study/cpu_study_depth]

Writes docs/figures/depth_protocol.png (PGD-AT's validation curves, clean and robust, under each
deep-net start at each depth: how the protocol was chosen) and docs/figures/depth.png (LAD minus
PGD-AT, paired over seeds, at the best and the last checkpoint, against depth, with the paired
standard errors), and prints both as tables.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from cpu_study import PROTOCOL_DEPTHS  # noqa: E402

from ladlit.records import best_epoch  # noqa: E402
from ladlit.reporting.aggregate import Run, find_runs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures"
DEPTHS = {"resnet20": 20, "resnet56": 56, "resnet110": 110}
WORST = "worst(pgd20+cw)"
MEASURES = (WORST, "pgd20", "clean")
SELECTION_SEED = 0  # chose the start and LAD's eta on validation: never a test pair (RESULTS 10.4)


def depth(run: Run) -> int | None:
    return DEPTHS.get(str(run.setting.get("choices.model")))


def chose_the_start(run: Run) -> bool:
    """PGD-AT's seed 0 at a depth where the deep-net start was chosen (not depth 20, which takes it)."""
    return arm(run) == "pgd" and run.seed == SELECTION_SEED and run.setting.get("choices.model") in PROTOCOL_DEPTHS


def protocol(run: Run) -> str:
    """The run's deep-net start (experiments/cpu_study.py PROTOCOLS), read from its config."""
    he = run.setting.get("model.conv_init") == "he" and run.setting.get("model.zero_init_residual")
    warmup = bool(run.setting.get("scheduler.warmup_epochs"))
    return {(True, True): "recipe", (True, False): "no_warmup", (False, False): "plain"}.get(
        (bool(he), warmup), "other"
    )


def arm(run: Run) -> str:
    """PGD-AT, or LAD at its eta."""
    eta = run.setting.get("lad.eta")
    return "pgd" if eta is None else f"lad eta={eta}"


def _validation_cells(run: Run) -> str | None:
    """Best robust validation (%), its epoch (from one), clean there, last robust validation."""
    validated = [r for r in run.history if "val/robust_acc" in r]
    best = best_epoch(run.history)
    if not best:
        return None
    return (
        f"{100 * best['val/robust_acc']:.1f} | {best['epoch'] + 1} | {100 * best['val/acc_clean']:.1f} "
        f"| {100 * validated[-1]['val/robust_acc']:.1f}"
    )


def protocol_table(runs: list[Run]) -> str:
    """PGD-AT seed 0 per depth and start: how the deep-net start was chosen."""
    lines = [
        "| depth | start | best robust val (%) | epoch | clean there (%) | last robust val (%) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run in sorted(runs, key=lambda r: (depth(r) or 0, protocol(r))):
        if chose_the_start(run) and (cells := _validation_cells(run)):
            lines.append(f"| {depth(run)} | {protocol(run)} | {cells} |")
    return "\n".join(lines)


def eta_table(runs: list[Run], start: str = "recipe") -> str:
    """Seed 0 of each arm per depth under the chosen start: how LAD's eta was chosen (the rule itself
    is `experiments/cpu_study.py --chosen-eta`: highest best robust validation)."""
    lines = [
        "| depth | arm | best robust val (%) | epoch | clean there (%) | last robust val (%) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    chosen = [r for r in runs if r.seed == 0 and depth(r) and protocol(r) == start]
    for run in sorted(chosen, key=lambda r: (depth(r), arm(r) != "pgd", float(r.setting.get("lad.eta") or 0))):
        if cells := _validation_cells(run):
            lines.append(f"| {depth(run)} | {arm(run)} | {cells} |")
    return "\n".join(lines)


def plot_protocols(runs: list[Run]) -> Path | None:
    chosen = [r for r in runs if chose_the_start(r)]
    depths = sorted({depth(r) for r in chosen})
    if not depths:
        return None
    fig, axes = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 3.4), sharey=True, squeeze=False)
    colours = {"recipe": "tab:green", "no_warmup": "tab:orange", "plain": "tab:gray", "other": "tab:purple"}
    for ax, d in zip(axes[0], depths):
        for run in (r for r in chosen if depth(r) == d):
            validated = [r for r in run.history if "val/robust_acc" in r]
            epochs = [r["epoch"] + 1 for r in validated]
            colour = colours[protocol(run)]
            ax.plot(
                epochs, [100 * r["val/robust_acc"] for r in validated], color=colour, label=f"{protocol(run)}, robust"
            )
            ax.plot(
                epochs,
                [100 * r["val/acc_clean"] for r in validated],
                color=colour,
                ls=":",
                label=f"{protocol(run)}, clean",
            )
        ax.axhline(10, color="black", lw=0.5)
        ax.set(title=f"ResNet-{d}, PGD-AT seed 0", xlabel="epoch")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("validation accuracy (%)")
    return _save(fig, "depth_protocol")


def paired(
    runs: list[Run], checkpoint: str, measure: str, start: str = "recipe"
) -> dict[int, tuple[str, float, float | None, int]]:
    """Per depth, among runs of the deep-net start `start` (the one chosen, RESULTS 10.1): the LAD
    arm with the most test seeds, and the mean LAD - PGD-AT over the test seeds both have (points),
    its standard error, the number of pairs. The selection seed is left out even where it has a
    test number (its closing clean test): it carries the luck of the choice it made."""
    by_arm: dict[tuple[int, str], dict[int, float]] = defaultdict(dict)
    for run in runs:
        value = next(
            (v for (c, n, _, m), v in run.measurements.items() if c == checkpoint and n == 5000 and m == measure), None
        )
        if depth(run) and protocol(run) == start and value is not None and run.seed != SELECTION_SEED:
            by_arm[(depth(run), arm(run))][run.seed] = value
    out = {}
    for d in sorted({d for d, _ in by_arm}):
        pgd = by_arm.get((d, "pgd"), {})
        lads = [(a, v) for (dd, a), v in by_arm.items() if dd == d and a != "pgd"]
        if not pgd or not lads:
            continue
        name, lad = max(lads, key=lambda item: len(item[1]))
        diffs = [100 * (lad[s] - pgd[s]) for s in lad if s in pgd]
        if diffs:
            se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else None
            out[d] = (name, statistics.mean(diffs), se, len(diffs))
    return out


def depth_table(runs: list[Run]) -> str:
    lines = [
        "| depth | LAD arm | checkpoint | measure | LAD - PGD-AT (points) | pairs |",
        "|---:|---|---|---|---:|---:|",
    ]
    for checkpoint in ("best.ckpt", "last.ckpt"):
        for measure in MEASURES:
            for d, (name, mean, se, n) in paired(runs, checkpoint, measure).items():
                lines.append(
                    f"| {d} | {name} | {checkpoint} | {measure} | {mean:+.2f}{f' ± {se:.2f}' if se else ''} | {n} |"
                )
    return "\n".join(lines)


def plot_depth(runs: list[Run]) -> Path | None:
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    drawn = False
    for checkpoint, marker, offset in (("best.ckpt", "o", -1.5), ("last.ckpt", "s", 1.5)):
        points = paired(runs, checkpoint, WORST)
        if not points:
            continue
        drawn = True
        xs = [d + offset for d in points]
        ax.errorbar(
            xs,
            [p[1] for p in points.values()],
            yerr=[p[2] or 0 for p in points.values()],
            marker=marker,
            capsize=3,
            label=f"{checkpoint.removesuffix('.ckpt')} checkpoint",
        )
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(0, color="black", lw=0.5)
    ax.set(
        xlabel="depth (residual blocks: 9, 27, 54)",
        ylabel="LAD - PGD-AT (points)",
        title="worst case of PGD-20 and CW-20, 5,000 test images",
        xticks=sorted(DEPTHS.values()),
    )
    ax.legend(fontsize=8)
    return _save(fig, "depth")


def _save(fig: plt.Figure, name: str) -> Path:
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(root: Path) -> None:
    runs = find_runs([root], [])
    print(protocol_table(runs), end="\n\n")
    print(eta_table(runs), end="\n\n")
    print(depth_table(runs), end="\n\n")
    for path in (plot_protocols(runs), plot_depth(runs)):
        if path:
            print(f"written: {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "experiments" / "results" / "cpu_study" / "cpu_study_depth")
