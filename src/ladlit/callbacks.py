"""Lightning callbacks of a training run (composed by `conf/callbacks/`): the epoch history that
goes into metrics.json, progress that reads well on a terminal and in a log file, the
exponential moving average of the weights, and two guards: catastrophic over-fitting (single-step
training) and label leaking (layer-wise defenses)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar, WeightAveraging
from torch import Tensor

from ladlit.checks import check_bool, check_positive_int, check_unit_interval
from ladlit.data import to_unit_float
from ladlit.defenses.layerwise import TRAINABLE_ETA, LayerwiseDefense
from ladlit.defenses.leak import leak_excess, leak_threshold
from ladlit.locks import checkpoint_lock
from ladlit.records import LEAKING

log = logging.getLogger("ladlit")


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, with the files it tracks saved relative to its folder: a run
    directory that is moved or copied resumes with its own best score and best checkpoint (the
    stock callback keeps absolute paths, so a moved run crashes and a copy reads the original's);
    and written under the folder's checkpoint lock (`ladlit.locks.checkpoint_lock`)."""

    PATHS = ("best_model_path", "kth_best_model_path", "last_model_path")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update({k: os.path.basename(state[k]) for k in self.PATHS if state.get(k)})
        state["best_k_models"] = {os.path.basename(k): v for k, v in state.get("best_k_models", {}).items()}
        state["dirpath"] = None  # marks the relative form
        return state

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # only the process that writes takes the lock (an evaluation reading the file waits for it):
        # in a distributed run the others meet it at save_checkpoint's barrier, lock or no lock
        writing = trainer.is_global_zero
        with checkpoint_lock(Path(filepath).parent) if writing else contextlib.nullcontext():
            super()._save_checkpoint(trainer, filepath)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        if state.get("dirpath") is None and self.dirpath:
            state.update({k: os.path.join(self.dirpath, state[k]) for k in self.PATHS if state.get(k)})
            state["best_k_models"] = {
                os.path.join(self.dirpath, k): v for k, v in state.get("best_k_models", {}).items()
            }
            state["dirpath"] = self.dirpath
        super().load_state_dict(state)


class BestCheckpoint(RunCheckpoint):
    """best.ckpt: the epoch with the highest `monitor`, considered only at the end of an epoch that
    validated (others have nothing to compare, and Lightning would warn each time) and never at an
    epoch the label-leak guard flagged (the rule `records.best_epoch` applies to a finished run's
    history)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        if self.monitor in metrics and not float(metrics.get(LEAKING, 0.0)) > 0:
            super().on_train_epoch_end(trainer, module)


class EpochHistory(pl.Callback):
    """One record per training epoch: its logged epoch metrics, the fresh validation metrics (only
    in epochs that validated) and the wall time of its training batches.

    Kept in checkpoints (`state_dict`), so a resumed run's history covers every epoch; `train()`
    writes it into metrics.json, from which the report draws learning curves.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []
        self._val: dict[str, float] = {}
        self._train_seconds = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._val, self._train_seconds = {}, 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._train_seconds += time.perf_counter() - self._batch_start

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val = _scalars(trainer.callback_metrics, prefix="val/")

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        metrics = _scalars(trainer.callback_metrics, prefix="train/")
        self.records.append(
            {
                "epoch": trainer.current_epoch,
                "step": trainer.global_step,
                **metrics,
                **self._val,
                "train_seconds": self._train_seconds,
            }
        )

    def state_dict(self) -> dict[str, Any]:
        return {"records": self.records}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records = list(state_dict["records"])


class PlainProgress(ProgressBar):
    """A plain line per epoch (and every `every_n_steps` steps of a long epoch) for logs that are
    not a terminal: SLURM, nohup, CI. Lines go to the `ladlit` logger, i.e. to stdout and
    `train.log` under Hydra."""

    def __init__(self, every_n_steps: int = 50) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()
        self._first_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        n = self.total_train_batches
        if self._enabled and self.every_n_steps and (batch_idx + 1) % self.every_n_steps == 0 and batch_idx + 1 < n:
            rate = (batch_idx + 1) * _batch_size(batch) / (time.perf_counter() - self._epoch_start)
            loss = trainer.callback_metrics.get("train/loss")
            log.info(
                "epoch %d step %d/%d  loss %.4f  %.0f img/s",
                trainer.current_epoch,
                batch_idx + 1,
                n,
                float(loss) if loss is not None else math.nan,
                rate,
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not self._enabled:
            return
        now = time.perf_counter()
        done = trainer.current_epoch + 1 - self._first_epoch
        left = (trainer.max_epochs - trainer.current_epoch - 1) * (now - self._fit_start) / max(done, 1)
        shown = "  ".join(
            f"{k} {float(v):.4f}"
            for k, v in sorted(trainer.callback_metrics.items())
            if k in ("train/loss", "train/acc") or k.startswith("val/acc_")
        )
        log.info(
            "epoch %d/%d  %s  %.0f s/epoch  %s left",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            shown,
            now - self._epoch_start,
            _duration(left),
        )


class RichProgress(RichProgressBar):
    """Lightning's rich bar without the logger's version number (`v_num`), which says nothing here."""

    def get_metrics(self, trainer: Any, module: Any) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics


class EMA(WeightAveraging):
    """Exponential moving average of the weights (Polyak averaging; Gowal et al. 2020, Rebuffi et al.
    2021), through Lightning's `WeightAveraging`: validation, best-checkpoint selection, the
    checkpoints' `state_dict` and testing all use the average, while the raw weights stay in each
    checkpoint (`current_model_state`), so a resumed run continues exactly. BatchNorm statistics
    are averaged like the weights (`use_buffers=True`, the callback's documented default).

    The decay warms up as min(decay, (1 + t) / (10 + t)) after t updates, so the first averages
    are not dominated by the random initialisation (`warmup=False`: constant decay).
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True) -> None:
        self.decay, self.warmup = check_unit_interval("decay", decay, "e.g. 0.999; null: no averaging"), warmup
        super().__init__(avg_fn=self.average)

    def average(self, averaged: Tensor, current: Tensor, num_averaged: Tensor) -> Tensor:
        decay = torch.clamp((1 + num_averaged) / (10 + num_averaged), max=self.decay) if self.warmup else self.decay
        return decay * averaged + (1 - decay) * current


class CatastrophicOverfittingWarning(UserWarning):
    """Multi-step attack accuracy collapsed while single-step accuracy rose (Wong et al. 2020)."""


class CollapseRule:
    """Catastrophic over-fitting, validation by validation: PGD accuracy falls below `ratio` of its
    best so far while FGSM accuracy stands above its value at that best (the model has learned to
    defeat the one step it trains on, not the threat model)."""

    def __init__(self, ratio: float = 1 / 3) -> None:
        self.ratio = check_unit_interval("ratio", ratio, "a fraction of the best PGD accuracy, e.g. 1/3")
        self.best_pgd, self.fgsm_at_best = -1.0, 0.0

    def update(self, pgd: float, fgsm: float) -> bool:
        """Whether the model is collapsed at this validation."""
        if pgd > self.best_pgd:
            self.best_pgd, self.fgsm_at_best = pgd, fgsm
        return pgd < self.ratio * self.best_pgd and fgsm > self.fgsm_at_best


def collapsed_epochs(
    history: Iterable[Mapping[str, float]], pgd: str = "val/acc_pgd10", fgsm: str = "val/acc_fgsm", ratio: float = 1 / 3
) -> list[int]:
    """The epochs of a recorded history (metrics.json's) at which `CollapseRule` holds."""
    rule = CollapseRule(ratio)
    return [int(r["epoch"]) for r in history if pgd in r and fgsm in r and rule.update(r[pgd], r[fgsm])]


class CatastrophicOverfitting(pl.Callback):
    """Watches each validation for catastrophic over-fitting (`CollapseRule`): logs
    `val/catastrophic_overfit` (1 collapsed, 0 not) into the epoch history and the loggers, and
    warns once. Needs a PGD and an FGSM attack among the validation attacks (e.g.
    `attack=[pgd10,fgsm]`); without them it does nothing. Must come before EpochHistory."""

    KEY = "val/catastrophic_overfit"

    def __init__(self, pgd: str = "pgd10", fgsm: str = "fgsm", ratio: float = 1 / 3) -> None:
        self.pgd, self.fgsm = f"val/acc_{pgd}", f"val/acc_{fgsm}"
        self.rule = CollapseRule(ratio)
        self.warned = False

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        if trainer.sanity_checking or self.pgd not in metrics or self.fgsm not in metrics:
            return
        pgd, fgsm = float(metrics[self.pgd]), float(metrics[self.fgsm])
        collapsed = self.rule.update(pgd, fgsm)
        metrics[self.KEY] = torch.tensor(float(collapsed))
        for logger in trainer.loggers:
            logger.log_metrics({self.KEY: float(collapsed)}, step=trainer.global_step)
        if collapsed and not self.warned:
            self.warned = True
            warnings.warn(
                f"catastrophic over-fitting at epoch {trainer.current_epoch}: {self.pgd} {pgd:.3f} is below "
                f"{self.rule.ratio:.2f} of its best ({self.rule.best_pgd:.3f}) while {self.fgsm} rose to {fgsm:.3f}. "
                "The best checkpoint (by robust validation accuracy) predates it; a smaller step, a multi-step "
                "base or early stopping avoids it.",
                CatastrophicOverfittingWarning,
                stacklevel=2,
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best_pgd": self.rule.best_pgd, "fgsm_at_best": self.rule.fgsm_at_best, "warned": self.warned}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rule.best_pgd, self.rule.fgsm_at_best = state_dict["best_pgd"], state_dict["fgsm_at_best"]
        self.warned = state_dict["warned"]


class LabelLeakWarning(UserWarning):
    """The network reads the label out of its own layer-wise perturbation."""


class LabelLeakGuard(pl.Callback):
    """For a layer-wise defense, at every validation: on the first `n_examples` validation images
    (the same ones each time), how much more often the training forward, its perturbations
    computed from labels shifted by one class, predicts those labels than the network's clean
    prediction is them (`ladlit.defenses.leak.leak_excess`). Logged as `val/label_leak`, and
    `val/leaking` (1 above `threshold`, else 0), into the epoch history and the loggers; the first
    time it is above, a warning.

    The default threshold is three standard errors of a share near chance on `n_examples` images
    (0.056 at 256 images and 10 classes): a network that learned nothing follows a handed label
    about as often as chance either way, so only a real leak clears it. The CPU study's healthy
    runs followed a shifted label less often than chance (1.6-5.1 %), its leaking ones 31-41 % of
    the time (experiments/RESULTS.md, 6.7 and 9)."""

    KEY, FLAG = "val/label_leak", LEAKING

    def __init__(self, n_examples: int = 256, threshold: float | None = None) -> None:
        self.n_examples = check_positive_int("n_examples", n_examples)
        hint = "an excess share of followed labels, e.g. 0.056; null: 3 standard errors"
        self.threshold = None if threshold is None else check_unit_interval("threshold", threshold, hint)
        self.warned = False
        self._batch: tuple[Tensor, Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        defense = getattr(module, "defense", None)
        if trainer.sanity_checking or not isinstance(defense, LayerwiseDefense) or max(defense.eta) == 0:
            return
        batch = self._probe_batch(trainer, module.device)
        if batch is None:
            return
        x, y = batch
        num_classes = trainer.datamodule.num_classes
        with torch.enable_grad(), torch.inference_mode(False):
            excess = leak_excess(defense, module.net, x, y, num_classes)
        threshold = self.threshold if self.threshold is not None else leak_threshold(num_classes, len(y))
        leaking = excess > threshold
        values = {self.KEY: excess, self.FLAG: float(leaking)}
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})
        for logger in trainer.loggers:
            logger.log_metrics(values, step=trainer.global_step)
        if leaking and not self.warned:
            self.warned = True
            eta = defense.eta if len(defense.eta) > 1 else defense.eta[0]
            warnings.warn(
                f"label leaking at epoch {trainer.current_epoch}: with defense.eta={eta} (normalize={defense.normalize}) the "
                f"training forward follows a deliberately shifted label {excess:.0%} more often than the network's clean "
                f"prediction does (above {threshold:.1%}). The network is reading the label from its own perturbation, so "
                f"its training accuracy is not robustness. Lower eta: the CPU study found {TRAINABLE_ETA} "
                "(experiments/RESULTS.md 6.7).",
                LabelLeakWarning,
                stacklevel=2,
            )

    def _probe_batch(self, trainer: pl.Trainer, device: torch.device) -> tuple[Tensor, Tensor] | None:
        """The first `n_examples` validation images, taken once."""
        if self._batch is None:
            datamodule = getattr(trainer, "datamodule", None)
            loader = datamodule.val_dataloader() if datamodule is not None else None
            xs, ys, seen = [], [], 0
            for x, y in loader or []:
                xs.append(x[: self.n_examples - seen])
                ys.append(y[: self.n_examples - seen])
                seen += len(ys[-1])
                if seen >= self.n_examples:
                    break
            if not ys:
                return None
            self._batch = to_unit_float(torch.cat(xs)), torch.cat(ys)
        return self._batch[0].to(device), self._batch[1].to(device)

    def state_dict(self) -> dict[str, Any]:
        return {"warned": self.warned}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.warned = state_dict["warned"]


def ema(decay: float | None, warmup: bool = True) -> EMA | None:
    """The EMA callback, or None (no averaging) when `decay` is None."""
    check_bool("warmup", warmup)  # also when off: a word such as `no` would count as true once on
    return None if decay is None else EMA(decay, warmup)


def progress(every_n_steps: int = 50) -> ProgressBar:
    """The rich bar on a terminal, plain log lines when stdout is redirected."""
    return RichProgress() if sys.stdout.isatty() else PlainProgress(every_n_steps)


def _scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and getattr(v, "numel", lambda: 1)() == 1}


def _batch_size(batch: Any) -> int:
    return len(batch[1]) if isinstance(batch, (tuple, list)) else 1


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{int(seconds % 60):02d}s"
