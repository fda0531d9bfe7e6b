"""`python -m ladlit.train defense=lad_sm dataset=cifar10 model=preact_resnet18 ...`

`train(cfg)` does the work and returns the final test metrics (what a sweep optimises);
`main` is the Hydra wrapper.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import LearningRateMonitor

from ladlit.callbacks import EpochHistory
from ladlit.checkpoints import find_checkpoint, load_checkpoint, load_weights, net_state_dict
from ladlit.config import check_renamed_overrides, validate_config
from ladlit.console import console, report_errors
from ladlit.errors import CheckpointError
from ladlit.evaluation import write_json
from ladlit.loggers import build_loggers
from ladlit.module import AdversarialTraining
from ladlit.runs import describe_run, device_name
from ladlit.tables import accuracy_table


def build_module(cfg: DictConfig) -> AdversarialTraining:
    """The LightningModule described by `cfg` (model, defense, optimizer, scheduler, attacks)."""
    return AdversarialTraining(
        net=instantiate(cfg.model),
        defense=instantiate(cfg.defense),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        val_attacks={name: instantiate(node) for name, node in (cfg.get("attack") or {}).items()},
        run_config=OmegaConf.to_container(cfg, resolve=True),
        seed=cfg.seed,
        **cfg.get("speed", {}),
    )


def train(cfg: DictConfig, extra_callbacks: list[pl.Callback] | None = None) -> dict[str, float]:
    """Fit, then test the best checkpoint (by robust validation accuracy); returns test metrics.

    A run whose output directory already holds checkpoints/last.ckpt (a rerun with the same
    `hydra.run.dir`, a requeued SLURM job) resumes from it.
    """
    validate_config(cfg)
    _one_gpu_per_job(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.output_dir)
    datamodule = instantiate(cfg.dataset)
    module = build_module(cfg)
    run = describe_run(module.hparams.run_config)
    loggers = build_loggers(cfg.get("logger"), out_dir, run)
    callbacks = build_callbacks(cfg.get("callbacks"), with_logger=bool(loggers)) + list(extra_callbacks or [])
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, default_root_dir=str(out_dir)
    )
    started = time.time()
    trainer.fit(module, datamodule=datamodule, ckpt_path=_resume_path(cfg.get("ckpt_path"), module, out_dir))
    best = next((cb for cb in trainer.checkpoint_callbacks if cb.monitor), None)
    best_path = best.best_model_path if best is not None else ""
    results = trainer.test(module, datamodule=datamodule, ckpt_path=best_path or None, verbose=False)[0]
    metrics = {k: float(v) for k, v in results.items()}
    if trainer.is_global_zero:
        history = next((cb.records for cb in callbacks if isinstance(cb, EpochHistory)), [])
        write_json(
            out_dir / "metrics.json",
            {
                **metrics,
                "run": run,
                "best_checkpoint": os.path.relpath(best_path, out_dir) if best_path else None,
                "test_examples": len(datamodule.test_set)
                if getattr(datamodule, "test_set", None) is not None
                else None,  # unset under ddp_spawn
                "finished": not trainer.fast_dev_run and trainer.current_epoch >= trainer.max_epochs,
                "fast_dev_run": bool(trainer.fast_dev_run),
                "epochs": trainer.current_epoch,
                "train_seconds_per_epoch": statistics.median([r["train_seconds"] for r in history])
                if history
                else None,
                "wall_seconds": time.time() - started,
                "device": device_name(module.device),
                "date": time.strftime("%Y-%m-%d"),
                "history": history,
                "config": module.hparams.run_config,
            },
        )
        console.print(
            accuracy_table(
                {k.removeprefix("test/acc_"): v for k, v in metrics.items() if "/acc_" in k}, title="test accuracy"
            )
        )
        console.print(f"run directory: {out_dir}")
    return metrics


def build_callbacks(cfg: DictConfig | None, with_logger: bool) -> list[pl.Callback]:
    """Instantiate each configured callback (`conf/callbacks/`); LR monitoring needs a logger."""
    callbacks = [instantiate(node) for node in (cfg or {}).values() if node is not None]
    callbacks = [cb for cb in callbacks if cb is not None]  # a factory may answer "off" (e.g. ema.decay=null)
    return [cb for cb in callbacks if with_logger or not isinstance(cb, LearningRateMonitor)]


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


def _resume_path(ckpt_path: Any, module: AdversarialTraining, out_dir: Path) -> str | None:
    """The checkpoint to resume from, checked before Lightning touches it: readable, matching.

    `ckpt_path=null` resumes from this run directory's last.ckpt when there is one;
    `ckpt_path=last` insists on it.
    """
    own_last = out_dir / "checkpoints" / "last.ckpt"
    if ckpt_path is None and not own_last.is_file():
        return None
    if ckpt_path in (None, "last"):
        if not own_last.is_file():
            raise CheckpointError(
                f"ckpt_path=last, but {own_last} does not exist: rerun with hydra.run.dir=<the run to resume> or ckpt_path=<a .ckpt>"
            )
        ckpt_path = own_last
        console.print(f"resuming from {own_last}")
    path = find_checkpoint(str(ckpt_path))
    ckpt = load_checkpoint(path)
    if "state_dict" not in ckpt or "epoch" not in ckpt:
        raise CheckpointError(
            f"{path} is not a training checkpoint of ladlit (no state_dict/epoch); resume from <run dir>/checkpoints/last.ckpt"
        )
    load_weights(module.net, net_state_dict(ckpt), source=str(path))
    return str(path)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
@report_errors
def hydra_main(cfg: DictConfig) -> float:
    return train(cfg).get("test/robust_acc", float("nan"))


@report_errors
def main() -> None:
    """`python -m ladlit.train`: old spellings are answered with the new ones before Hydra composes."""
    check_renamed_overrides(sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
