"""Every launcher docs/sweeps.md shows works: joblib (parallel), SLURM through submitit (run with
submitit's local executor, which needs no cluster), and sweeps with long override lists."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import CONF, REPO, run_cli
from omegaconf import OmegaConf

TINY = ["experiment=quickstart", "trainer.fast_dev_run=true"]


def _launcher(overrides: list[str]) -> dict:
    """The resolved `hydra.launcher` node of `python -m ladlit.train -m <overrides>`."""
    from hydra import compose, initialize_config_dir

    first_jobs = [o.split(",")[0] for o in overrides]  # a sweep's first job
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", first_jobs, return_hydra_config=True)
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def _multirun(tmp_path, *overrides, timeout=600):
    cmd = [sys.executable, "-m", "ladlit.train", "-m", *overrides, f"hydra.sweep.dir={tmp_path}"]
    env = {**os.environ, "LADLIT_PARALLEL_JOBS": "2"}
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return sorted(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_parallel_launcher_runs_two_jobs(tmp_path):
    jobs = _multirun(tmp_path, "hydra/launcher=parallel", "defense=none,pgd", *TINY)
    assert [p.name.split("_")[0] for p in jobs] == ["0", "1"]
    assert all((job / "metrics.json").is_file() for job in jobs)


@pytest.mark.parametrize(
    "command",
    [
        [
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            "defense=lad,lad_sm",
        ],  # docs/sweeps.md's two SLURM lines
        ["experiment=paper_grid", "hydra/launcher=slurm"],
        ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"],
    ],
)
def test_slurm_launcher_config_composes(command):
    resolved = _launcher(command)
    assert resolved["_target_"].endswith("SlurmLauncher") and resolved["nodes"] >= 1
    assert resolved["tasks_per_node"] == resolved["gpus_per_node"] == (4 if "trainer.devices=4" in command else 1)


def test_slurm_settings_run_through_submitit_locally(tmp_path):
    """submitit's local executor takes the generic settings of our SLURM config (SLURM-only keys
    have no local meaning) and runs the sweep through the same submitit code path."""
    slurm = _launcher(["hydra/launcher=slurm"])
    generic = {k: slurm[k] for k in ("timeout_min", "cpus_per_task", "tasks_per_node", "nodes", "mem_gb")}
    overrides = [f"hydra.launcher.{k}={v}" for k, v in generic.items()] + [
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1",
    ]
    jobs = _multirun(tmp_path, "hydra/launcher=submitit_local", *overrides, "defense=none,pgd", *TINY)
    assert len(jobs) == 2 and all((job / "metrics.json").is_file() for job in jobs)


def test_twelve_overrides_give_short_unique_job_directories(tmp_path, monkeypatch):
    overrides = [
        "optimizer.lr=0.05,0.02",
        "optimizer.momentum=0.8",
        "optimizer.weight_decay=1e-4",
        "dataset.batch_size=32",
        "dataset.val_size=100",
        "scheduler=cosine",
        "eps=0.05",
        "trainer.log_every_n_steps=1",
        "train_attack_steps=1",
        "dataset.crop_padding=2",
        "dataset.hflip=false",
        "defense=pgd",
    ]
    code, printed = run_cli("train", ["-m", *overrides, *TINY, f"hydra.sweep.dir={tmp_path}"], monkeypatch)
    assert code == 0, printed[-3000:]
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(jobs) == 2 and len({p.name for p in jobs}) == 2
    assert all(len(p.name) <= 80 and p.name.startswith(f"{i}_") for i, p in enumerate(jobs))


def test_sweeping_a_key_only_some_options_have_says_how(tmp_path, monkeypatch):
    args = ["-m", "defense=pgd,lad", "defense.eta=0,0.001", f"hydra.sweep.dir={tmp_path}"]
    code, printed = run_cli("train", args, monkeypatch)
    assert code == 2 and "Traceback" not in printed
    assert (
        "defense.eta exists for defense=lad but not for defense=pgd" in printed
        and "defense=lad defense.eta=0" in printed
    )
