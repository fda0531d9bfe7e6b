"""Helpers the tests share (import them: `from helpers import quickstart_config`): the real
configs from conf/, tiny models, the shared data folder. Fixtures live in conftest.py."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

import ladlit.config
from ladlit.models import CifarResNet
from ladlit.records import EvaluationRecord, RunRecord, evaluation_key, write_json

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SHARED_DATA = REPO.parent / "shared" / "data"


def experiment_script(name: str) -> ModuleType:
    """experiments/<name>.py as a module. The scripts are not a package: they import their
    neighbours (benchlib, cpu_study) by name, so the folder goes on sys.path."""
    if str(REPO / "experiments") not in sys.path:
        sys.path.insert(0, str(REPO / "experiments"))
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pretend_cpu(monkeypatch, *, amx: bool = False, avx512_bf16: bool = False, cap: str | None = None) -> None:
    """Make torch's CPU probes and the oneDNN cap say this CPU has (or lacks) bf16 hardware."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_init_amx", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    else:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


def tiny_net(seed: int = 0, channels: int = 3, num_classes: int = 10) -> CifarResNet:
    """Three basic blocks, two of them transitions; eval-ready in milliseconds."""
    torch.manual_seed(seed)
    return CifarResNet(
        num_classes=num_classes, mean=[0.5] * channels, std=[0.25] * channels, depth=8, widths=(8, 16, 32)
    )


def compose_config(
    name: str, overrides: list[str] | tuple[str, ...] = (), output_dir: Path | None = None
) -> DictConfig:
    """The real config from conf/ with overrides, data from ../shared/data, runs writing to `output_dir`."""
    return ladlit.config.compose_config(
        name, [*overrides, f"data_dir={SHARED_DATA}"], output_dir or REPO / "outputs" / "tests"
    )


def quickstart_config(tmp_path: Path, *overrides: str) -> DictConfig:
    """The quickstart experiment (digits, tiny net, CPU), writing into tmp_path, CSV logging only."""
    return compose_config("train", ["experiment=quickstart", "logger=csv", *overrides], output_dir=tmp_path)


# --- fake run directories, as ladlit.train and ladlit.eval write them (for report tests) -----------
PGD = {"_target_": "ladlit.defenses.PGDTraining", "eps": 0.03, "steps": 5}
FGSM_RS = {"_target_": "ladlit.defenses.FGSMRS", "eps": 0.03, "step_ratio": 1.25}


def lad(eta: float, scheme: str = "lie_trotter", base: dict = PGD) -> dict:
    return {
        "_target_": "ladlit.defenses.LayerwiseDefense",
        "scheme": scheme,
        "eta": eta,
        "normalize": "rms",
        "base": base,
    }


def write_run(root, name, seed, defense, clean, pgd20, subset=8192, n=5000, **train_extra):
    """A finished run's metrics.json as `ladlit.train` writes it."""
    layerwise = "Layerwise" in defense["_target_"]
    base = defense["base"] if layerwise else defense
    run = {
        "base": "fgsm_rs" if base["_target_"].endswith("FGSMRS") else "pgd",
        "scheme": defense.get("scheme", "-") if layerwise else "-",
        "eta": defense.get("eta", "-"),
        "seed": seed,
        "eps": 0.03,
        "dataset": "cifar10_jpeg",
        "model": "resnet20",
    }
    config = {
        "seed": seed,
        "eps": 0.03,
        "defense": defense,
        "dataset": {"train_subset": subset, "path": f"/data/{seed}"},
        "trainer": {"max_epochs": 10},
        "output_dir": f"/out/{name}",
    }
    data: RunRecord = {
        "test/acc_clean": clean,
        "test/acc_pgd20": pgd20,
        "run": run,
        "config": config,
        "finished": True,
        "fast_dev_run": False,
        "best_checkpoint": "checkpoints/best.ckpt",
        "test_examples": n,
        **train_extra,
    }
    path = root / name
    path.mkdir(parents=True)
    write_json(path / "metrics.json", data)
    return path


def write_eval(run_dir, entries):
    """checkpoints/metrics.json as `ladlit.eval` writes it, each entry under its own key."""
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    evaluations = {}
    for i, entry in enumerate(entries):
        kind = "+".join(a for a in entry.get("accuracy", {}) if a not in ("clean", "worst")) or f"extra{i}"
        key = evaluation_key(entry.get("checkpoint", "best.ckpt"), kind, entry.get("eps"), entry.get("n_examples", 0))
        evaluations[key] = {"date": "2026-11-26", **entry}
    record: EvaluationRecord = {"run": {}, "evaluations": evaluations}
    write_json(run_dir / "checkpoints" / "metrics.json", record)


def make_tarball(path, n_per_class=3):
    with tarfile.open(path, "w:gz") as tar:
        for split in ("test", "train"):  # unsorted on purpose
            for label, cls in enumerate(["cat", "airplane"]):
                for i in range(n_per_class):
                    buf = io.BytesIO()
                    Image.fromarray(np.full((4, 4, 3), 40 * label + i, np.uint8)).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"{split}/{cls}/{i:04d}.png")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))


def run_cli(tool: str, args: list[str], monkeypatch, cwd: Path = REPO) -> tuple[int, str]:
    """`python -m ladlit.<tool> <args>` run in this process (the imports are paid once per test
    process, not per call): its exit code and what it printed. The tests that need a real process
    (exit status of the interpreter, locks between processes, launchers) start one."""
    import contextlib
    import importlib
    import sys

    main = importlib.import_module(f"ladlit.{tool}").main
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [f"ladlit.{tool}", *args])
    monkeypatch.setenv("COLUMNS", "120")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            code = main(args) if tool == "report" else main()
        except SystemExit as exit_:
            code = exit_.code
    return (code or 0) if isinstance(code, int) or code is None else 1, printed.getvalue()
