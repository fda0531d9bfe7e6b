"""Figures and validation tables of the CPU study, from the committed results alone.

    python experiments/cpu_study_figures.py [experiments/results/cpu_study]

Writes docs/figures/eta_sweep.png (validation accuracy vs eta, one panel per regime, PGD-AT
as a band over its seeds), overfitting.png (robust accuracy on the training batches vs on the
validation split, per epoch), adjoint_norms.png (per-block adjoint and perturbation norms over
one LAD run), layer_profile.png (when `ladlit.eval layer_profile=true` was run) and
remedies.png (regime B's seeded arms, the field's remedies among them: validation curves and
test PGD-20 at the best and last checkpoints), full_data.png (regime C, all 49,000 training
images: validation curves of every run, one colour per arm directory, catastrophic over-fitting
events marked), and prints the validation table that chooses eta
(best epoch by robust validation accuracy), the layer-profile tables (mean over seeds, paired
differences to PGD-AT) and the stall guard replayed over the LAD runs.
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

from ladlit.defenses.layerwise import STALL_CHECK_STEPS, STALL_LOSS_FRACTION  # noqa: E402
from ladlit.records import best_epoch  # noqa: E402
from ladlit.reporting.aggregate import Run, find_runs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures"
REGIMES = {
    "cpu_study": "16,384 images, 10 epochs",
    "cpu_study_overfit": "1,000 images, 80 epochs",
    "cpu_study+resnet56": "ResNet-56, 16,384 images, 10 epochs",
}
SCHEMES = {"pgd+lad": ("LAD (Lie-Trotter)", "tab:blue"), "pgd+lad_sm": ("LAD-SM (Strang-Marchuk)", "tab:red")}


def save(fig: plt.Figure, name: str) -> Path:
    fig.tight_layout()
    path = FIGURES / f"{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def regime(run: Run) -> str:
    """The run's protocol: its experiment, and its model when that is not the study's ResNet-20
    (ResNet-56 on regime A's protocol is a regime of its own, never averaged into regime A)."""
    experiment, model = str(run.setting.get("choices.experiment")), run.setting.get("choices.model")
    return experiment if model in (None, "resnet20") else f"{experiment}+{model}"


def best_record(run: Run) -> dict[str, float]:
    """The run's best validation epoch (the checkpoint `train` keeps), {} if it never validated."""
    return dict(best_epoch(run.history) or {})


def tamer(run: Run) -> str:
    """What the run changes of the spec's tamers (`eta_warmup_epochs`, `inject_during_attack`,
    `blocks`), in words; "" for a plain sweep point."""
    parts = []
    if run.setting.get("lad.eta_warmup_epochs"):
        parts.append(f"eta warm-up {run.setting['lad.eta_warmup_epochs']} epochs")
    if run.setting.get("lad.inject_during_attack") is False:
        parts.append("no injection during the attack")
    if run.setting.get("lad.blocks") is not None:
        parts.append(f"blocks {list(run.setting['lad.blocks'])}")
    return ", ".join(parts)


def validation_table(runs: list[Run]) -> str:
    lines = [
        "| regime | method | eta | normalize | tamer | seed | best epoch | val clean | val PGD-10 | last-epoch val PGD-10 | mean norm of p |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in sorted(runs, key=lambda r: (regime(r), r.setting["method"], str(r.setting.get("lad.eta")), str(r.seed))):
        best = best_record(run)
        last = [r for r in run.history if "val/robust_acc" in r][-1:] or [{}]
        if best:
            lines.append(
                f"| {regime(run)} | {run.setting['method']} | {run.setting.get('lad.eta', '-')} | {run.setting.get('lad.normalize', '-')} | {tamer(run) or '-'} | {run.seed} "
                f"| {int(best['epoch']) + 1} | {100 * best['val/acc_clean']:.1f} | {100 * best['val/robust_acc']:.1f} | {100 * last[0].get('val/robust_acc', float('nan')):.1f} | {_norm(run)} |"
            )
    return "\n".join(lines)


def _norm(run: Run) -> str:
    norm = mean_perturbation(run)
    return "-" if norm is None else f"{norm:.3f}"


def mean_perturbation(run: Run, last_epoch: float = float("inf")) -> float | None:
    """The injected perturbation's per-sample l2 norm, mean over blocks and logged epochs (up to
    `last_epoch`): what makes an eta of `normalize=none` (times the raw adjoint) comparable to
    one of `rms`."""
    norms = [
        v
        for record in run.history
        if record["epoch"] <= last_epoch
        for k, v in record.items()
        if "lad/perturbation_norm" in k
    ]
    return statistics.mean(norms) if norms else None


def rms_equivalent_eta(run: Run, regime_runs: list[Run]) -> float | None:
    """The rms eta that injects the same mean perturbation norm as `run` up to its best epoch (a
    raw-adjoint perturbation can run away after it), by the ratio norm / eta measured over the
    regime's rms runs (a median, so one odd run does not move it)."""
    ratios = [
        norm / float(r.setting["lad.eta"])
        for r in regime_runs
        if r.setting.get("lad.normalize") == "rms"
        and not tamer(r)
        and (norm := mean_perturbation(r))
        and float(r.setting["lad.eta"]) > 0
    ]
    norm = mean_perturbation(run, best_record(run).get("epoch", float("inf")))
    return norm / statistics.median(ratios) if ratios and norm else None


def stall_loss(run: Run, steps: int) -> tuple[int, float] | None:
    """(steps, epoch loss as a fraction of ln C) at the first epoch end past `steps`: what
    `LearningStalledWarning` reads, replayed from the logged `train/epoch_loss`."""
    if not run.setting.get("dataset.train_subset"):
        return None  # the whole training set: its size is not in the record (regime C; the guard was set on A and B)
    per_epoch = math.ceil(run.setting["dataset.train_subset"] / run.setting["dataset.batch_size"])
    for record in run.history:
        if (done := (record["epoch"] + 1) * per_epoch) >= steps and "train/epoch_loss" in record:
            return done, record["train/epoch_loss"] / math.log(run.setting["dataset.num_classes"])
    return None


def stall_table(runs: list[Run]) -> str:
    """The stall guard replayed over every untamed run: as shipped now, and as first shipped (100
    steps, 0.99 ln C), which fired on runs that went on to learn (RESULTS 6.5). Runs without a
    layer-wise defense are never checked; they show what adversarial training's own loss does."""
    lines = [
        f"| regime | method | eta | normalize | seed | loss / ln C after {STALL_CHECK_STEPS} steps | warns | warned as first shipped |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for run in sorted(runs, key=lambda r: (regime(r), r.setting["method"], str(r.setting.get("lad.eta")), str(r.seed))):
        if tamer(run) or not (now := stall_loss(run, STALL_CHECK_STEPS)):
            continue
        checked, first = "lad.eta" in run.setting, stall_loss(run, 100)
        lines.append(
            f"| {regime(run)} | {run.setting['method']} | {run.setting.get('lad.eta', '-')} | {run.setting.get('lad.normalize', '-')} | {run.seed} "
            f"| {now[1]:.3f} | {'yes' if checked and now[1] > STALL_LOSS_FRACTION else ''} "
            f"| {'yes' if checked and first and first[1] > 0.99 else ''} |"
        )
    return "\n".join(lines)


def plot_eta_sweep(runs: list[Run]) -> Path:
    regimes = [r for r in REGIMES if any(regime(run) == r for run in runs)]
    fig, axes = plt.subplots(1, len(regimes), figsize=(6 * len(regimes), 4.2), squeeze=False)
    for ax, name in zip(axes[0], regimes):
        mine = [r for r in runs if regime(r) == name]
        pgd = [best_record(r) for r in mine if r.setting["method"] == "pgd" and best_record(r)]
        for metric, style in (("val/robust_acc", "-"), ("val/acc_clean", "--")):
            if pgd:
                values = [100 * b[metric] for b in pgd]
                mean, std = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
                ax.axhspan(mean - std, mean + std, color="gray", alpha=0.25)
                ax.axhline(
                    mean,
                    color="gray",
                    ls=style,
                    lw=1,
                    label=f"PGD-AT {'PGD-10' if 'robust' in metric else 'clean'} (mean ± std, {len(values)} seeds)",
                )
            for method, (label, color) in SCHEMES.items():
                points = sorted(
                    (float(r.setting["lad.eta"]), 100 * best_record(r)[metric])
                    for r in mine
                    if r.setting["method"] == method
                    and r.setting.get("lad.normalize") == "rms"
                    and not tamer(r)
                    and best_record(r)
                    and float(r.setting["lad.eta"]) > 0
                )
                if points:  # a line through the mean over seeds at each eta, a dot per seed
                    by_eta = defaultdict(list)
                    for eta, value in points:
                        by_eta[eta].append(value)
                    ax.scatter(*zip(*points), s=12, color=color, alpha=0.6)
                    ax.plot(
                        list(by_eta),
                        [statistics.mean(v) for v in by_eta.values()],
                        style,
                        marker="o",
                        color=color,
                        label=f"{label} {'PGD-10' if 'robust' in metric else 'clean'} (mean over seeds)",
                    )
            raw = sorted(
                (eta, 100 * best_record(r)[metric])
                for r in mine
                if r.setting.get("lad.normalize") == "none"
                and not tamer(r)
                and best_record(r)
                and (eta := rms_equivalent_eta(r, mine))
            )
            if raw:  # the paper's literal form, placed where its mean perturbation norm puts it
                ax.plot(
                    *zip(*raw),
                    style,
                    marker="s",
                    mfc="none",
                    color="tab:green",
                    label=f"LAD, normalize=none {'PGD-10' if 'robust' in metric else 'clean'} (at the rms eta of equal mean norm up to its best epoch)",
                )
            markers = iter("^v<>")
            for r in sorted((r for r in mine if tamer(r) and best_record(r)), key=tamer):
                ax.plot(
                    float(r.setting["lad.eta"]),
                    100 * best_record(r)[metric],
                    next(markers, "x"),
                    mfc="none",
                    color=SCHEMES.get(r.setting["method"], ("", "black"))[1],
                    label=f"{arm_label(r)} {'PGD-10' if 'robust' in metric else 'clean'}",
                )
        ax.set_xscale("log")
        ax.set(
            xlabel="eta (relative size, normalize=rms)",
            ylabel="validation accuracy (%), best epoch",
            title=f"{name}: {REGIMES[name]}",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, "eta_sweep")


def plot_overfitting(runs: list[Run]) -> Path | None:
    """Robust accuracy on the training batches vs on the validation split, per epoch and seed, for
    PGD-AT and the seeded LAD arms of each regime (robust over-fitting shows as the two diverging)."""
    chosen = [r for r in runs if r.setting["method"] in ("pgd", *SCHEMES) and r.history]
    regimes = [r for r in REGIMES if any(regime(run) == r for run in chosen)]
    if not regimes:
        return None
    fig, axes = plt.subplots(1, len(regimes), figsize=(7 * len(regimes), 4.2), squeeze=False)
    for ax, name in zip(axes[0], regimes):
        plot_curves(ax, [r for r in chosen if regime(r) == name])
        ax.set(xlabel="epoch", ylabel="robust accuracy (%)", title=f"{name}: robust accuracy, train vs validation")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, "overfitting")


def plot_curves(ax: plt.Axes, chosen: list[Run]) -> None:
    by_method: dict[str, list[Run]] = defaultdict(list)
    for run in chosen:
        by_method[arm_label(run)].append(run)
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for label, group in sorted(by_method.items(), key=lambda kv: kv[0] != "PGD-AT"):
        if label != "PGD-AT" and len(group) < 2:
            continue  # a single sweep seed per eta would crowd the figure; seeded arms only
        color = next(colors)
        for i, run in enumerate(group):
            epochs = [r["epoch"] + 1 for r in run.history]
            ax.plot(
                epochs,
                [100 * r["train/acc"] for r in run.history],
                color=color,
                lw=1,
                alpha=0.8,
                label=f"{label}: training batches (as attacked in training)" if i == 0 else None,
            )
            val = [(r["epoch"] + 1, 100 * r["val/robust_acc"]) for r in run.history if "val/robust_acc" in r]
            ax.plot(
                *zip(*val),
                color=color,
                lw=1,
                ls="--",
                alpha=0.8,
                label=f"{label}: validation (PGD-10)" if i == 0 else None,
            )


def plot_adjoint_norms(runs: list[Run]) -> Path | None:
    lad = [
        r
        for r in runs
        if r.setting["method"] == "pgd+lad"
        and any("lad/adjoint_norm" in k for k in (r.history[0] if r.history else {}))
    ]
    if not lad:
        return None
    run = max(lad, key=lambda r: (regime(r) == "cpu_study", len(r.history), -abs(float(r.setting["lad.eta"]) - 0.001)))
    blocks = sorted({k.rsplit("/", 1)[-1] for r in run.history for k in r if "adjoint_norm" in k})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("viridis")
    for ax, kind in zip(axes, ("adjoint_norm", "perturbation_norm")):
        for i, block in enumerate(blocks):
            points = [
                (r["epoch"] + 1, r[f"train/lad/{kind}/{block}"])
                for r in run.history
                if f"train/lad/{kind}/{block}" in r
            ]
            if points:
                ax.plot(*zip(*points), color=cmap(i / max(len(blocks) - 1, 1)), label=block)
        ax.set(
            xlabel="epoch",
            ylabel="per-sample l2 norm (batch mean)",
            yscale="log",
            title=kind.replace("_", " ") + ("  (a_in, summed CE)" if kind == "adjoint_norm" else "  (p injected)"),
        )
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(f"{regime(run)}: LAD eta={run.setting['lad.eta']} seed {run.seed}")
    return save(fig, "adjoint_norms")


def layer_profiles(runs: list[Run]) -> dict[tuple[str, str, str], dict[int, dict[str, dict[str, float]]]]:
    """(regime, arm, checkpoint) -> {seed: profile}, profile[block][r] = accuracy."""
    groups: dict[tuple[str, str, str], dict[int, dict[str, dict[str, float]]]] = defaultdict(dict)
    for run in runs:
        for checkpoint, profile in run.layer_profiles.items():
            groups[(regime(run), arm_label(run), checkpoint)][int(run.seed)] = profile
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "PGD-AT", kv[0][1:])))


def layer_profile_table(runs: list[Run], r: str = "0.05") -> str:
    """Per regime: each arm's accuracy with one block pushed by r (mean over seeds), then its paired
    difference to PGD-AT per block (mean +- standard error over the seeds both have), in absolute
    points and as the share of the model's own clean accuracy it keeps (which discounts a
    checkpoint that is simply more accurate)."""
    lines: list[str] = []
    groups = layer_profiles(runs)
    for name in REGIMES:
        mine = {arm: seeds for (reg, arm, _), seeds in groups.items() if reg == name}
        if not mine:
            continue
        blocks = list(next(iter(next(iter(mine.values())).values())))
        lines += [
            f"{name}, r = {r}: accuracy (%) with only that block pushed, mean over seeds",
            f"| arm | seeds | clean | {' | '.join(str(i) for i in range(len(blocks)))} |",
            "|---|---:|---:|" + "---:|" * len(blocks),
        ]
        for arm, seeds in mine.items():
            clean = statistics.mean(100 * p[blocks[0]]["0.0"] for p in seeds.values())
            cells = [statistics.mean(100 * p[b][r] for p in seeds.values()) for b in blocks]
            lines.append(f"| {arm} | {len(seeds)} | {clean:.1f} | {' | '.join(f'{c:.1f}' for c in cells)} |")
        reference = mine.get("PGD-AT", {})
        for arm, seeds in mine.items():
            paired = sorted(set(seeds) & set(reference))
            if arm == "PGD-AT" or len(paired) < 2:
                continue
            for kind, value in (
                ("points", lambda p, b: 100 * p[b][r]),
                ("kept share", lambda p, b: 100 * p[b][r] / p[b]["0.0"]),
            ):
                cells = [_mean_se([value(seeds[s], b) - value(reference[s], b) for s in paired]) for b in blocks]
                lines.append(f"| {arm} - PGD-AT, {kind} | {len(paired)} | | {' | '.join(cells)} |")
        lines.append("")
    return "\n".join(lines)


def _mean_se(values: list[float]) -> str:
    return f"{statistics.mean(values):+.1f} ± {statistics.stdev(values) / len(values) ** 0.5:.1f}"


def plot_layer_profile(runs: list[Run]) -> Path | None:
    """Per regime, each arm's profile at r = 0.05 and 0.1 (mean over its profiled seeds, std bars)."""
    groups = layer_profiles(runs)
    if not groups:
        return None
    regimes = [r for r in REGIMES if any(reg == r for reg, _, _ in groups)]
    fig, axes = plt.subplots(1, len(regimes), figsize=(7.5 * len(regimes), 5.5), squeeze=False)
    for ax, name in zip(axes[0], regimes):
        colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
        for (reg, arm, checkpoint), seeds in groups.items():
            if reg != name:
                continue
            blocks = list(next(iter(seeds.values())))
            color = next(colors)
            for r, style in (("0.05", "-"), ("0.1", "--")):
                values = [[100 * p[b][r] for p in seeds.values()] for b in blocks]
                ax.errorbar(
                    range(len(blocks)),
                    [statistics.mean(v) for v in values],
                    yerr=[statistics.stdev(v) if len(v) > 1 else 0.0 for v in values],
                    fmt=style,
                    marker="o",
                    capsize=2,
                    color=color,
                    label=f"{arm} ({checkpoint.removesuffix('.ckpt')}, {_seeds(seeds)}), r={r}",
                )
        ax.set(
            xlabel="residual block (forward order)",
            ylabel="accuracy (%) with only that block pushed by r",
            title=f"{name}: layer-wise robustness profile",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    return save(fig, "layer_profile")


def _seeds(seeds: dict[int, object]) -> str:
    return f"seed {next(iter(seeds))}" if len(seeds) == 1 else f"mean ± std over {len(seeds)} seeds"


def arm_label(run: Run) -> str:
    """e.g. "PGD-AT+AWP", "LAD+EMA eta=0.001", "LAD eta=2 normalize=none, eta warm-up 20 epochs":
    the method's parts in words, and when layer-wise its eta, a normalisation other than rms and
    any tamer (so that runs differing in them are never pooled as seeds)."""
    words = {"pgd": "PGD-AT", "awp": "AWP", "ema": "EMA", "lad": "LAD", "lad_sm": "LAD-SM"}
    parts = [words.get(p, p) for p in str(run.setting["method"]).split("+")]
    layerwise = [p for p in parts if p.startswith("LAD")]
    if layerwise:  # LAD on top of PGD-AT: name the scheme first, the base's additions after it
        parts = layerwise + [p for p in parts if p not in ("PGD-AT", *layerwise)]
        label = f"{'+'.join(parts)} eta={run.setting.get('lad.eta')}"
        if run.setting.get("lad.normalize", "rms") != "rms":
            label += f" normalize={run.setting['lad.normalize']}"
        return ", ".join(filter(None, [label, tamer(run)]))
    return "+".join(parts)


def plot_remedies(runs: list[Run]) -> Path | None:
    """Regime B's seeded arms side by side: robust validation accuracy per epoch (mean over seeds)
    and test PGD-20 at the best and the last checkpoint (mean bar, a dot per seed)."""
    mine = [r for r in runs if regime(r) == "cpu_study_overfit" and r.history]
    by_arm: dict[str, list[Run]] = defaultdict(list)
    for run in mine:
        by_arm[arm_label(run)].append(run)
    by_arm = {k: v for k, v in by_arm.items() if any(_test_pgd20(r, "last.ckpt") is not None for r in v)}
    if len(by_arm) < 2:
        return None
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(13, 4.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = sorted(by_arm, key=lambda k: (k != "PGD-AT", k.startswith("LAD"), k))
    plotted: list[float] = []
    for i, label in enumerate(order):
        group, color = by_arm[label], colors[i % len(colors)]
        per_epoch: dict[int, list[float]] = defaultdict(list)
        for run in group:
            for record in run.history:
                if "val/robust_acc" in record:
                    per_epoch[record["epoch"] + 1].append(100 * record["val/robust_acc"])
        epochs = sorted(per_epoch)
        curves.plot(
            epochs,
            [statistics.mean(per_epoch[e]) for e in epochs],
            color=color,
            marker=".",
            label=f"{label} ({len(group)} seeds)",
        )
        for j, checkpoint in enumerate(("best.ckpt", "last.ckpt")):
            values = [v for v in (_test_pgd20(r, checkpoint) for r in group) if v is not None]
            plotted += values
            x = i + (0.2 if j else -0.2)
            bars.bar(x, statistics.mean(values), width=0.36, color=color, alpha=0.45 if j else 0.85)
            bars.plot([x] * len(values), values, "k.", ms=4)
    curves.set(
        xlabel="epoch", ylabel="validation robust accuracy (%), PGD-10", title="1,000 images, 80 epochs: validation"
    )
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7)
    bars.set_xticks(range(len(order)), order, rotation=20, ha="right", fontsize=8)
    bars.set_ylim(min(plotted) - 2, max(plotted) + 1.5)
    bars.set(
        ylabel="test PGD-20 accuracy (%), 5,000 images", title="best (dark) and last (light) checkpoint; dots: seeds"
    )
    bars.grid(alpha=0.3, axis="y")
    return save(fig, "remedies")


def plot_full_data(runs: list[Run]) -> Path | None:
    """Regime C: robust and clean validation accuracy per epoch of every run (a line per seed, a
    colour per arm directory, so the schedule and eta-grid runs show apart), with an x where the
    catastrophic-over-fitting detector fired (`val/catastrophic_overfit`), and the FGSM - PGD-10
    gap, which single-step training's collapse opens (FGSM accuracy soars as PGD's falls)."""
    mine = [r for r in runs if regime(r) == "cpu_study_full" and r.history]
    if not mine:
        return None
    by_arm: dict[str, list[Run]] = defaultdict(list)
    for run in mine:
        by_arm[run.path.parent.name].append(run)
    fig, (robust, clean, gap) = plt.subplots(1, 3, figsize=(18, 4.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, arm in enumerate(sorted(by_arm, key=lambda a: (not a.startswith("pgd"), a))):
        for j, run in enumerate(sorted(by_arm[arm], key=lambda r: str(r.seed))):
            validated = [r for r in run.history if "val/robust_acc" in r]
            epochs = [r["epoch"] + 1 for r in validated]
            label = f"{arm} ({len(by_arm[arm])} seed{'s' * (len(by_arm[arm]) > 1)})" if j == 0 else None
            style = dict(color=colors[i % len(colors)], lw=1.2, marker=".", alpha=0.85)
            robust.plot(epochs, [100 * r["val/robust_acc"] for r in validated], label=label, **style)
            clean.plot(epochs, [100 * r["val/acc_clean"] for r in validated], label=label, **style)
            both = [r for r in validated if "val/acc_fgsm" in r and "val/acc_pgd10" in r]
            gaps = [100 * (r["val/acc_fgsm"] - r["val/acc_pgd10"]) for r in both]
            gap.plot([r["epoch"] + 1 for r in both], gaps, label=label, **style)
            events = [
                (r["epoch"] + 1, 100 * r["val/robust_acc"]) for r in validated if r.get("val/catastrophic_overfit")
            ]
            if events:
                robust.plot(*zip(*events), "rx", ms=10, mew=2)
    robust.set(
        xlabel="epoch",
        ylabel="validation robust accuracy (%)",
        title="49,000 images: worst of PGD-10, FGSM (x: collapse flagged)",
    )
    clean.set(xlabel="epoch", ylabel="validation clean accuracy (%)", title="49,000 images: clean")
    gap.set(
        xlabel="epoch",
        ylabel="FGSM - PGD-10 validation accuracy (points)",
        title="the gap catastrophic over-fitting opens",
    )
    for ax in (robust, clean, gap):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, "full_data")


def collapse_table(runs: list[Run]) -> str:
    """Regime C, per run: the epochs the catastrophic-over-fitting detector flagged, the best
    epoch and its robust validation accuracy, and the last epoch's PGD-10 and FGSM accuracy."""
    lines = [
        "| arm | seed | flagged epochs | best epoch | best val worst | last val PGD-10 | last val FGSM |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for run in sorted(runs, key=lambda r: (r.path.parent.name, str(r.seed))):
        validated = [r for r in run.history if "val/acc_fgsm" in r and "val/acc_pgd10" in r]
        if regime(run) != "cpu_study_full" or not validated:
            continue
        flagged = [str(r["epoch"] + 1) for r in validated if r.get("val/catastrophic_overfit")]
        best, last = best_record(run), validated[-1]
        lines.append(
            f"| {run.path.parent.name} | {run.seed} | {', '.join(flagged) or 'none'} | {best['epoch'] + 1} "
            f"| {100 * best['val/robust_acc']:.1f} | {100 * last['val/acc_pgd10']:.1f} | {100 * last['val/acc_fgsm']:.1f} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def _test_pgd20(run: Run, checkpoint: str) -> float | None:
    value = next((v for (c, n, _, a), v in run.measurements.items() if (c, n, a) == (checkpoint, 5000, "pgd20")), None)
    return None if value is None else 100 * value


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "experiments" / "results" / "cpu_study"
    notes: list[str] = []
    runs = find_runs([root], notes)
    FIGURES.mkdir(parents=True, exist_ok=True)
    print(validation_table(runs))
    print(layer_profile_table(runs))
    print(stall_table(runs))
    print(collapse_table(runs))
    written = [
        plot_eta_sweep(runs),
        plot_overfitting(runs),
        plot_adjoint_norms(runs),
        plot_layer_profile(runs),
        plot_remedies(runs),
        plot_full_data(runs),
    ]
    print("\n".join(f"wrote {p}" for p in written if p))
    print("\n".join(f"note: {n}" for n in notes))


if __name__ == "__main__":
    main()
