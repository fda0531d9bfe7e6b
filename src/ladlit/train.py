"""`python -m ladlit.train defense=lad_sm dataset=cifar10 model=preact_resnet18 ...`

`train(cfg)` does the work and returns the final test metrics and the best validation robust
accuracy; `main` is the Hydra wrapper, whose return value (what an optimising sweeper maximises)
is that validation number, never a test number.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import LearningRateMonitor

from ladlit.callbacks import EpochHistory
from ladlit.checks import check_bool, check_path, check_positive_int, check_seed
from ladlit.config import (
    CONF_DIR,
    build,
    check_derived_keys,
    check_renamed_overrides,
    check_sweep_keys,
    named_refusal,
)
from ladlit.console import console, report_errors
from ladlit.errors import ConfigError, LadlitError
from ladlit.locks import RunDirectoryBusyError, training_lock
from ladlit.loggers import build_loggers, finish_loggers
from ladlit.module import AdversarialTraining
from ladlit.records import SELECTS_CHECKPOINT, RunRecord, best_epoch, read_json, write_json
from ladlit.resume import discard_empty_run_dir, resume_checkpoint
from ladlit.runs import cpu_kernels, describe_run, device_name, native_bf16, why_bf16_is_emulated
from ladlit.sweeps import TrialPruned, check_validation_split
from ladlit.tables import accuracy_table

# On small datasets an epoch has fewer batches than trainer.log_every_n_steps; Lightning says so every run.
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")


def build_module(cfg: DictConfig) -> AdversarialTraining:
    """The LightningModule described by `cfg` (model, defense, optimizer, scheduler, attacks)."""
    return AdversarialTraining(
        net=build(cfg.model),
        defense=build(cfg.defense),
        optimizer=build(cfg.optimizer),
        scheduler=build(cfg.scheduler) if cfg.get("scheduler") else None,
        val_attacks={name: build(node) for name, node in (cfg.get("attack") or {}).items()},
        run_config=OmegaConf.to_container(cfg, resolve=True),
        seed=cfg.seed,
        **cfg.get("speed", {}),
    )


@dataclass
class RunParts:
    """Everything a run trains with, built (and so checked) before its directory exists."""

    datamodule: pl.LightningDataModule
    module: AdversarialTraining
    callbacks: list[pl.Callback]


def build_run(cfg: DictConfig) -> RunParts:
    """Build every object the run needs; each constructor's own check is the refusal of a bad
    value (one ConfigError naming the key), raised before anything is written."""
    check_run_keys(cfg)
    check_precision(cfg)
    _one_gpu_per_job(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build(cfg.dataset)
    module = build_module(cfg)
    check_optimization(cfg, module)
    callbacks = [build(node) for node in (cfg.get("callbacks") or {}).values() if node is not None]
    callbacks = [cb for cb in callbacks if cb is not None]  # a factory may answer "off" (e.g. ema.decay=null)
    return RunParts(datamodule, module, callbacks)


def train(cfg: DictConfig, extra_callbacks: list[pl.Callback] | None = None) -> dict[str, float]:
    """Fit, then test the best checkpoint (by robust validation accuracy); returns test metrics.

    A run whose output directory already holds checkpoints/last.ckpt (a rerun with the same
    `hydra.run.dir`, a requeued SLURM job) resumes from it, if it was trained with the same config
    (`ladlit.resume`). A config error leaves no empty run directory behind; a directory another
    process is training in is refused (`ladlit.locks`).
    """
    out_dir = Path(cfg.output_dir)
    try:
        parts = build_run(cfg)
    except (LadlitError, InstantiationException):
        discard_failed_start(out_dir)
        raise
    with training_lock(out_dir):  # another process's directory is refused before this one touches it
        try:
            return _train(cfg, parts, out_dir, list(extra_callbacks or []))
        except (LadlitError, InstantiationException):
            discard_empty_run_dir(out_dir)
            raise


def _train(cfg: DictConfig, parts: RunParts, out_dir: Path, extra_callbacks: list[pl.Callback]) -> dict[str, float]:
    datamodule, module = parts.datamodule, parts.module
    resume = resume_checkpoint(
        cfg.get("ckpt_path"), module.hparams.run_config, module.net, out_dir, cfg.get("force_resume", False)
    )
    run = describe_run(module.hparams.run_config)
    loggers = build_loggers(cfg.get("logger"), out_dir, run)
    # learning-rate monitoring needs a logger
    callbacks = [cb for cb in parts.callbacks if loggers or not isinstance(cb, LearningRateMonitor)] + extra_callbacks
    trainer: pl.Trainer = build(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, default_root_dir=str(out_dir)
    )
    if trainer.is_global_zero:
        save_run_config(cfg, out_dir)
    started = time.time()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    # taken now: testing a checkpoint restores the callbacks' state, which would cut the history at that epoch
    history = list(next((cb.records for cb in callbacks if isinstance(cb, EpochHistory)), []))
    history = history or saved_history(out_dir / "checkpoints" / "last.ckpt")  # ddp_spawn trained in other processes
    best = next((cb for cb in trainer.checkpoint_callbacks if cb.monitor), None)
    best_path = best.best_model_path if best is not None else ""
    # the last weights when nothing was selected: ckpt_path=None tests the module as training left it
    results = trainer.test(module, datamodule=datamodule, ckpt_path=best_path or None, verbose=False)[0]
    metrics = {k: float(v) for k, v in results.items()}
    metrics[OBJECTIVE] = best_validation(history)
    if trainer.is_global_zero:
        record = run_record(trainer, module, datamodule, history, best_path, out_dir, time.time() - started)
        write_json(out_dir / "metrics.json", {**metrics, "run": run, **record})
        accuracies = {k.removeprefix("test/acc_"): v for k, v in metrics.items() if "/acc_" in k}
        console.print(accuracy_table(accuracies, title=f"test accuracy, {record['selection']}"))
        console.print(f"run directory: {out_dir}")
    finish_loggers(loggers)
    return metrics


def discard_failed_start(out_dir: Path) -> None:
    """Remove what a refused start left (Hydra's log in the directory it made), unless another
    process is training in that directory."""
    with suppress(RunDirectoryBusyError), training_lock(out_dir):
        discard_empty_run_dir(out_dir)


OBJECTIVE = "val/best_robust_acc"  # what selects the checkpoint, and what a sweep optimises


def best_validation(history: list[dict[str, float]]) -> float:
    """The best robust validation accuracy of a run's epoch history (nan if it never validated)."""
    best = best_epoch(history)
    return float("nan") if best is None else best[SELECTS_CHECKPOINT]


def saved_history(checkpoint: Path) -> list[dict[str, float]]:
    """The epoch history stored in a checkpoint (EpochHistory's state), or [] without one."""
    if not checkpoint.is_file():
        return []
    states = torch.load(checkpoint, map_location="cpu", weights_only=False).get("callbacks", {})
    return next((state["records"] for key, state in states.items() if key.startswith("EpochHistory")), [])


def run_record(
    trainer: pl.Trainer,
    module: AdversarialTraining,
    datamodule: Any,
    history: list[dict[str, float]],
    best_path: str,
    out_dir: Path,
    seconds: float,
) -> RunRecord:
    """What metrics.json says about the run besides its test accuracies (paths relative to the run)."""
    test_set = getattr(datamodule, "test_set", None)  # unset in this process under ddp_spawn
    return {
        "best_checkpoint": os.path.relpath(best_path, out_dir) if best_path else None,
        "selection": selection(datamodule, best_path),
        "test_examples": len(test_set) if test_set is not None else None,
        "finished": not trainer.fast_dev_run and trainer.current_epoch >= trainer.max_epochs,
        "fast_dev_run": bool(trainer.fast_dev_run),
        "epochs": trainer.current_epoch,
        "train_seconds_per_epoch": statistics.median([r["train_seconds"] for r in history]) if history else None,
        "wall_seconds": seconds,
        "device": device_name(module.device),
        "kernels": cpu_kernels(),
        "date": time.strftime("%Y-%m-%d"),
        "history": history,
        "attacks": {name: attack.settings() for name, attack in module.val_attacks.items()},
        "worst_includes_clean": True,
        "pruned": next((cb.pruned for cb in trainer.callbacks if getattr(cb, "pruned", None)), None),
        "config": module.hparams.run_config,
    }


def selection(datamodule: Any, best_path: str) -> str:
    """How the tested checkpoint was chosen, for the record: never on test data."""
    if getattr(datamodule, "val_size", None) == 0:
        return "last epoch: no validation split (dataset.val_size=0), so no checkpoint was selected"
    if best_path:
        return f"best epoch by {SELECTS_CHECKPOINT} (validation; epochs the label-leak guard flagged excluded)"
    return "last epoch: no epoch was selectable (none validated, or the label-leak guard flagged every one)"


def save_run_config(cfg: DictConfig, out_dir: Path) -> None:
    """`.hydra/config.yaml` and `overrides.yaml`, written once the run is known not to clash with
    what the directory holds (Hydra's own copy is off: it would overwrite before any check)."""
    from hydra.core.hydra_config import HydraConfig

    folder = out_dir / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    if HydraConfig.initialized():
        (folder / "overrides.yaml").write_text(OmegaConf.to_yaml(HydraConfig.get().overrides.task))


GROUPS_OF_SETTINGS = {"ema": "ema.decay=0.999", "speed": "speed.channels_last=true"}  # top-level nodes: an example each


def check_run_keys(cfg: DictConfig) -> None:
    """Refuse a bad value of a top-level key that no constructor checks under its own name: those
    read here (seed, switches), those used inside other values (`outputs/${name}/...`,
    `${data_dir}/cifar10-jpeg.tar.gz`) and the groups of settings. The other keys reach a
    constructor whole through an interpolation (`defense.eps: ${eps}`), whose refusal names them
    (`ladlit.config.build`); `output_dir` and `choices` are not set by hand (`check_derived_keys`)."""
    check_seed("seed", cfg.seed)
    for key in ("force_resume", "one_gpu_per_job"):
        check_bool(key, cfg.get(key, False))
    for key in ("name", "data_dir"):
        check_path(key, cfg.get(key, "-"))
    for key, example in GROUPS_OF_SETTINGS.items():
        if key in cfg and not isinstance(cfg[key], DictConfig):
            raise ConfigError(
                f"{key} is a group of settings, not one value (got {cfg[key]!r}): set one, e.g. {example}"
            )


def check_optimization(cfg: DictConfig, module: AdversarialTraining) -> None:
    """Build the optimizer and the LR schedule once before training, so that their own checks
    (a negative learning rate, momentum or weight decay; a schedule that cannot be built) refuse
    the run before anything is written, with the key to change."""
    max_epochs = check_positive_int("trainer.max_epochs", cfg.trainer.max_epochs)
    try:
        optimizer = module.optimizer_factory(module.parameters())
    except (ValueError, TypeError) as err:
        raise named_refusal(err, "optimizer") from None
    if module.scheduler_factory is not None:
        try:
            module.scheduler_factory(optimizer, max_epochs=max_epochs)
        except (ValueError, TypeError) as err:
            raise named_refusal(err, "scheduler") from None


def check_precision(cfg: DictConfig) -> None:
    """fp16 autocast needs a GPU: on a CPU Lightning would quietly run bf16 instead. bf16 on a CPU
    without bf16 hardware runs, but so slowly that the user should hear it before the first epoch."""
    precision = str(cfg.trainer.get("precision", "32"))
    on_cpu = cfg.trainer.get("accelerator") == "cpu" or not torch.cuda.is_available()
    if precision.startswith("16") and on_cpu:
        raise ConfigError(
            f"trainer.precision={precision} needs a GPU; on a CPU use trainer.precision=bf16-mixed (or 32-true)"
        )
    if precision.startswith("bf16") and on_cpu and not native_bf16():
        console.print(
            f"[bold yellow]warning:[/] trainer.precision={precision} is emulated here ({why_bf16_is_emulated()}), "
            "about 9x slower than trainer.precision=32-true (experiments/RESULTS.md 8.4); "
            "keep it only to repeat a bf16 record",
            highlight=False,
            soft_wrap=True,
        )


def _one_gpu_per_job(cfg: DictConfig) -> None:
    """In a multirun on a machine with several GPUs, pin job k to GPU k mod count."""
    from hydra.core.hydra_config import HydraConfig

    count = torch.cuda.device_count()
    if (
        cfg.get("one_gpu_per_job")
        and count > 1
        and HydraConfig.initialized()
        and HydraConfig.get().job.get("num") is not None
    ):
        if cfg.trainer.get("strategy", "auto") in ("auto", None) and cfg.trainer.get("devices") in (1, "1"):
            with open_dict(cfg):
                cfg.trainer.devices = [int(HydraConfig.get().job.num) % count]


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@report_errors
def hydra_main(cfg: DictConfig) -> float:
    """A sweep optimises validation, never test: the best robust validation accuracy. A sweep's
    trial that was stopped early fails instead (`ladlit.sweeps.TrialPruned`)."""
    objective = train(cfg)[OBJECTIVE]
    if _in_multirun() and (pruned := (read_json(Path(cfg.output_dir) / "metrics.json") or {}).get("pruned")):
        raise TrialPruned(f"pruned: {pruned}")
    return objective


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@report_errors
def main() -> None:
    """`python -m ladlit.train`: old spellings are answered with the new ones before Hydra composes."""
    check_renamed_overrides(sys.argv[1:])
    check_derived_keys(sys.argv[1:])
    if {"-m", "--multirun"} & set(sys.argv[1:]):
        check_sweep_keys(sys.argv[1:])
        check_validation_split(sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    # Run the importable module's entry point, not this __main__ copy: launchers that pickle the
    # task (joblib, submitit) then reference its functions by name instead of copying them.
    from ladlit.train import main as entry_point

    entry_point()
