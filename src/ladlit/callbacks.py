"""Lightning callbacks of a training run (composed by `conf/callbacks/`): the epoch history that
goes into metrics.json, and progress that reads well on a terminal and in a log file."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar

log = logging.getLogger("ladlit")


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
