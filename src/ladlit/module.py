"""The LightningModule: a backbone trained with a pluggable defense, validated under attack."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import MeanMetric

from ladlit.attacks import Attack, correct, worst_case
from ladlit.checks import check_bool
from ladlit.defenses import Defense, EpochEnd
from ladlit.errors import ConfigError
from ladlit.records import WORST


class AdversarialTraining(pl.LightningModule):
    """Trains `net` on the loss `defense` computes; validates clean and under `val_attacks`.

    Logged per epoch: `{stage}/acc_clean`, `{stage}/acc_<attack>` for each attack,
    `{stage}/acc_worst` (per example: correct clean and under every attack; AutoAttack's and
    RobustBench's robust accuracy), and `{stage}/robust_acc` (the checkpoint monitor): the worst
    case, or the clean accuracy when there is no attack.

    Args:
        net: backbone taking [0, 1] images.
        defense: computes the training loss of a batch.
        optimizer: factory `params -> Optimizer` (Hydra `_partial_`).
        scheduler: factory `(optimizer, max_epochs) -> LRScheduler`, or None.
        val_attacks: evaluation attacks by name.
        run_config: the resolved run config, stored in checkpoints so `ladlit.eval` can rebuild.
        seed: reseed every RNG at each epoch start from (seed, epoch, rank), so a run resumed from
            an epoch-end checkpoint draws the same shuffles, crops and random starts as an
            uninterrupted one. None leaves the RNGs alone.
        channels_last: keep weights and batches in NHWC layout (what GPU tensor cores read fastest).
        compile: `torch.compile` the backbone in place (`nn.Module.compile`), so every forward and
            backward pass, the attack's included, runs the compiled graph; parameter names and
            checkpoints stay those of the plain module.
    """

    def __init__(
        self,
        net: nn.Module,
        defense: Defense,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        val_attacks: Mapping[str, Attack] | None = None,
        run_config: dict | None = None,
        seed: int | None = None,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "defense", "optimizer", "scheduler", "val_attacks"])
        self.net, self.defense = net, defense
        defense.check_model(net)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.val_attacks = dict(val_attacks or {})
        if WORST in self.val_attacks:
            raise ConfigError(
                f"an attack may not be named {WORST!r}: that name is the per-example worst case over attacks"
            )
        self.train_acc, self.train_loss = MeanMetric(), MeanMetric()
        names = ["clean", *self.val_attacks, *([WORST] if self.val_attacks else [])]
        self.eval_acc = nn.ModuleDict(
            {stage: nn.ModuleDict({n: MeanMetric() for n in names}) for stage in ("val", "test")}
        )
        check_bool("speed.channels_last", channels_last)
        check_bool("speed.compile", compile)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile:
            if defense.not_compilable:
                raise ConfigError(
                    f"speed.compile=true cannot be used with {type(defense).__name__}: {defense.not_compilable}; set speed.compile=false"
                )
            self.net.compile()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def on_train_epoch_start(self) -> None:
        if self.hparams.seed is not None:
            pl.seed_everything(self.hparams.seed + 1000 * self.current_epoch + self.global_rank, verbose=False)
        self.defense.on_train_epoch_start(self.current_epoch)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        x = x.contiguous(memory_format=self.memory_format)
        out = self.defense.training_loss(self.net, x, y)
        self.train_acc.update((out.logits.argmax(1) == y).float())
        self.train_loss.update(out.loss.detach())
        self.log("train/loss", out.loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/epoch_loss", self.train_loss, on_step=False, on_epoch=True)
        self._num_classes = out.logits.shape[1]
        logs = dict(out.logs)
        if self.global_step % max(1, self.trainer.log_every_n_steps) == 0:
            logs.update(self.defense.diagnostics())
        for name, value in logs.items():
            self.log(f"train/{name}", value)
        return out.loss

    def on_train_epoch_end(self) -> None:
        if self.train_loss.update_count:
            self.defense.on_train_epoch_end(
                EpochEnd(self.current_epoch, self.global_step, float(self.train_loss.compute()), self._num_classes)
            )

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate_batch("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate_batch("test", batch)

    def on_validation_epoch_end(self) -> None:
        self._log_accuracies("val")

    def on_test_epoch_end(self) -> None:
        self._log_accuracies("test")

    def _evaluate_batch(self, stage: str, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        x = x.contiguous(memory_format=self.memory_format)
        metrics = self.eval_acc[stage]
        clean = correct(self.net, x, y)
        metrics["clean"].update(clean.float())
        hits = {name: correct(self.net, x, y, attack) for name, attack in self.val_attacks.items()}
        for name, hit in hits.items():
            metrics[name].update(hit.float())
        if WORST in metrics:
            metrics[WORST].update(worst_case(clean, hits.values()).float())

    def _log_accuracies(self, stage: str) -> None:
        accs = {name: metric.compute() for name, metric in self.eval_acc[stage].items()}
        for name, acc in accs.items():
            self.log(f"{stage}/acc_{name}", acc, prog_bar=name in ("clean", WORST))
            self.eval_acc[stage][name].reset()
        robust = accs.get(WORST, accs["clean"])
        self.log(f"{stage}/robust_acc", robust)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        self.defense.after_optimizer_step()  # e.g. AWP takes its weight perturbation back, before EMA reads the weights

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        max_epochs = self.trainer.max_epochs
        if self.trainer.fast_dev_run:  # one batch of the configured schedule (its warm-up may be longer than 1 epoch)
            max_epochs = ((self.hparams.run_config or {}).get("trainer") or {}).get("max_epochs") or max_epochs
        scheduler = self.scheduler_factory(optimizer, max_epochs=max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
