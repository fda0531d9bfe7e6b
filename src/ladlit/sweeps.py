"""Optimising sweeps (`experiment=eta_search`, Hydra's Optuna sweeper): trials that are clearly
worse than their finished siblings stop early, leaking trials stop at once, and the sweep ends
with a summary of every trial (best eta, outcomes, a plot) in its directory.

A stopped trial reaches Optuna as failed (`TrialPruned`; Hydra's sweeper has no pruned state), so
neither Optuna's best trial nor its sampler ever reads a truncated value, and the summary names
the same best trial as Optuna's `optimization_results.yaml`. A sweep is refused before its first
trial when there is no validation split to optimise (`check_validation_split`).

The pruning rule reads the sibling trials' `metrics.json` in the sweep directory rather than
Optuna's trial objects, which the sweeper does not hand to its jobs; so it works the same under
the joblib and SLURM launchers and after a killed sweep is resumed from its Optuna storage.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ladlit.checks import check_positive_int
from ladlit.errors import ConfigError
from ladlit.records import best_epoch, read_json

log = logging.getLogger("ladlit")
ROBUST, CLEAN, LEAKING = "val/robust_acc", "val/acc_clean", "val/leaking"


class TrialPruned(Exception):  # noqa: N818 (Optuna's name for the same thing)
    """Raised by a sweep job whose trial was stopped early: the job fails, so the sweeper tells
    Optuna the trial failed instead of handing it a truncated value. Its record stays on disk."""


def check_validation_split(overrides: list[str]) -> None:
    """Refuse an optimising (Optuna) sweep of `python -m ladlit.train -m <overrides>` whose dataset
    holds out no validation split: its objective would be missing, and it must never be a test number."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from ladlit.config import CONF_DIR

    given = [o for o in overrides if "=" in o and not o.startswith("-")]
    fixed = [o.input_line for o in OverridesParser.create().parse_overrides(given) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", fixed, return_hydra_config=True)
    optimising = "optuna" in str(OmegaConf.select(cfg, "hydra.sweeper._target_", default="")).lower()
    if optimising and OmegaConf.select(cfg, "dataset.val_size", default=None) == 0:
        raise ConfigError(
            "an optimising sweep maximises the best validation accuracy, and dataset.val_size=0 holds out no "
            "validation split (the test set never stands in for one); set dataset.val_size to the number of "
            "training images to hold out, e.g. dataset.val_size=1000"
        )


def best_so_far(history: list[dict[str, Any]], epoch: int) -> float | None:
    """A run's best robust validation accuracy up to and including `epoch` (None: not validated yet)."""
    values = [r[ROBUST] for r in history if ROBUST in r and r["epoch"] <= epoch]
    return max(values) if values else None


def sibling_histories(run_dir: Path) -> list[list[dict[str, Any]]]:
    """The epoch histories of the other finished, unpruned trials of the sweep `run_dir` belongs to."""
    histories = []
    for metrics in run_dir.parent.glob("*/metrics.json"):
        record = read_json(metrics) or {}
        if metrics.parent != run_dir and record.get("finished") and not record.get("pruned"):
            histories.append(record.get("history") or [])
    return histories


class PruneAgainstSiblings(pl.Callback):
    """Stops a trial at a validation from epoch `min_epochs` on when its best robust validation
    accuracy so far is more than `margin` below the best any finished sibling trial had reached
    by the same epoch, and at once when the label-leak guard flags a leak (`val/leaking`). The
    reason is kept for metrics.json (`pruned`)."""

    def __init__(self, min_epochs: int = 2, margin: float = 0.02, on_leak: bool = True) -> None:
        self.min_epochs = check_positive_int("min_epochs", min_epochs)
        self.margin = margin
        self.on_leak = on_leak
        self.pruned: str | None = None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned:
            return
        epoch, metrics = trainer.current_epoch, trainer.callback_metrics
        if self.on_leak and float(metrics.get(LEAKING, 0.0)) > 0:
            return self._prune(trainer, f"leaking: the label-leak guard flagged epoch {epoch}")
        if epoch + 1 < self.min_epochs or ROBUST not in metrics:
            return
        history = [*self._history(trainer), {"epoch": epoch, ROBUST: float(metrics[ROBUST])}]
        mine = best_so_far(history, epoch)
        theirs = [
            v for h in sibling_histories(Path(trainer.default_root_dir)) if (v := best_so_far(h, epoch)) is not None
        ]
        if theirs and mine is not None and mine < max(theirs) - self.margin:
            self._prune(
                trainer,
                f"worse: best robust validation {mine:.3f} by epoch {epoch}, a finished trial had {max(theirs):.3f}",
            )

    def _prune(self, trainer: pl.Trainer, reason: str) -> None:
        self.pruned = reason
        trainer.should_stop = True
        log.info("pruned: %s", reason)

    @staticmethod
    def _history(trainer: pl.Trainer) -> list[dict[str, Any]]:
        from ladlit.callbacks import EpochHistory

        return next((list(cb.records) for cb in trainer.callbacks if isinstance(cb, EpochHistory)), [])


def outcome(record: dict[str, Any], num_classes: int) -> str:
    """finished | pruned | leaking | collapsed (best robust validation accuracy at chance or below)."""
    history = record.get("history") or []
    if str(record.get("pruned", "")).startswith("leaking") or any(r.get(LEAKING, 0) > 0 for r in history):
        return "leaking"
    if record.get("pruned"):
        return "pruned"
    robust = [r[ROBUST] for r in history if ROBUST in r]
    return "collapsed" if not robust or max(robust) <= 1 / num_classes else "finished"


def trials(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per trial of a sweep: its eta, scheme and normalisation, epochs trained, best
    robust validation accuracy and the clean one at that epoch, and its outcome."""
    rows = []
    by_number = lambda p: (
        int(p.parent.name.split("_")[0]) if p.parent.name.split("_")[0].isdigit() else 0,
        p.parent.name,
    )
    for metrics in sorted(sweep_dir.glob("*/metrics.json"), key=by_number):
        record = read_json(metrics) or {}
        config = record.get("config") or {}
        defense, classes = config.get("defense") or {}, int((config.get("dataset") or {}).get("num_classes") or 10)
        history = record.get("history") or []
        best = best_epoch(history) or {}  # what the trial hands Optuna (`ladlit.train.best_validation`)
        rows.append(
            {
                "trial": metrics.parent.name,
                "eta": defense.get("eta"),
                "scheme": defense.get("scheme"),
                "normalize": defense.get("normalize"),
                "epochs": len(history),
                "robust": best.get(ROBUST, math.nan),
                "clean": best.get(CLEAN, math.nan),
                "outcome": outcome(record, classes),
                "pruned": record.get("pruned") or "",
            }
        )
    return rows


def summary(sweep_dir: Path) -> str:
    """The sweep's markdown summary: the best trial, then every trial; writes eta_search.md and
    eta_search.png into `sweep_dir`."""
    rows = trials(sweep_dir)
    # the trials Optuna was told a value for: stopped ones fail (TrialPruned), so the best is Optuna's
    told = [r for r in rows if not r["pruned"] and not math.isnan(r["robust"])]
    lines = [f"# eta search: {sweep_dir}\n"]
    if told:
        best = max(told, key=lambda r: r["robust"])
        caveat = "" if best["outcome"] == "finished" else f" It {best['outcome']}: no eta of this search trains."
        lines.append(
            f"Best: eta = {best['eta']} ({best['scheme']}, normalize={best['normalize']}): robust validation "
            f"{100 * best['robust']:.1f} %, clean {100 * best['clean']:.1f} % at that epoch ({best['trial']}).{caveat}\n"
        )
    else:
        lines.append("No trial finished: every one was stopped early or never validated.\n")
    lines.append("| trial | eta | scheme | normalize | epochs | best robust val (%) | clean there (%) | outcome |")
    lines.append("|---|---:|---|---|---:|---:|---:|---|")
    for r in rows:
        lines.append(
            f"| {r['trial']} | {r['eta']} | {r['scheme']} | {r['normalize']} | {r['epochs']} | {100 * r['robust']:.1f} "
            f"| {100 * r['clean']:.1f} | {r['outcome']}{': ' + r['pruned'] if r['pruned'] else ''} |"
        )
    trained, full = sum(r["epochs"] for r in rows), max((r["epochs"] for r in rows), default=0) * len(rows)
    lines.append(f"\nEpochs trained: {trained} of the {full} a full grid of {len(rows)} trials would train.")
    text = "\n".join(lines) + "\n"
    (sweep_dir / "eta_search.md").write_text(text)
    _plot(rows, sweep_dir / "eta_search.png")
    return text


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for kind, marker in (("finished", "o"), ("pruned", "v"), ("leaking", "x"), ("collapsed", "s")):
        points = [
            (float(r["eta"]), 100 * r["robust"])
            for r in rows
            if r["outcome"] == kind and isinstance(r["eta"], (int, float)) and not math.isnan(r["robust"])
        ]
        if points:
            ax.scatter(*zip(*points), marker=marker, label=kind)
    ax.set(xscale="log", xlabel="eta", ylabel="best robust validation accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class EtaSearchReport(Callback):
    """Hydra callback: at the end of the sweep, print `summary` and write its files."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            print(summary(sweep_dir))
            print(f"written: {sweep_dir / 'eta_search.md'}, {sweep_dir / 'eta_search.png'}")
