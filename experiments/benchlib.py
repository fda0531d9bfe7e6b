"""What the benchmark scripts share: the device, its threads, how it is named in a result header
and in a result's JSON record (the machine and the command, so every figure quoted from a record
says where and how it was measured), GPU sync, models and defenses composed from conf/ as a run
would build them, the quiet Trainer arguments, and CIFAR-shaped random data (throughput does not
depend on pixel values)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn

from ladlit.config import compose_config
from ladlit.data import ImageArrays, InMemoryDataModule
from ladlit.defenses import Defense
from ladlit.runs import cpu_kernels

# Trainer arguments of a timing run: nothing written, nothing printed, no validation
QUIET_TRAINER = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "limit_val_batches": 0,
}


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads(threads: int | None) -> int:
    """Run torch's intra-op work on `threads` threads (None: torch's default); the number in use."""
    if threads is not None:
        if threads < 1:
            sys.exit(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def machine(device: torch.device) -> dict[str, Any]:
    """What a timing or a repeated result depends on besides the code: the processor and the kernels
    torch uses on it (`ladlit.runs.cpu_kernels`: ATen's capability, a oneDNN cap, threads, version),
    its cores, and the load when measuring started (1-minute average: about 0 when the cores were free)."""
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        **cpu_kernels(),
        "cores": os.cpu_count(),
        "load_1min": os.getloadavg()[0],
    }


def write_record(path: Path, measured_on: dict[str, Any], result: dict[str, Any]) -> None:
    """`result` as JSON at `path`, with the date, the command that measured it, the machine as
    `machine()` saw it when measuring started, and the load when it ended."""
    record = {
        "date": str(date.today()),
        "command": shlex.join(["python", *sys.argv]),
        "machine": {**measured_on, "load_1min_at_end": os.getloadavg()[0]},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, **result}, indent=2))


def header(script: str, device: torch.device, *details: str) -> str:
    """`# <script> <date> | <GPU name or CPU threads> | torch <version> | <details>`, for RESULTS.md."""
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return " | ".join([f"# {script} {date.today()}", machine, f"torch {torch.__version__}", *details]) + "\n"


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(model: str, defense: str, attack_steps: int) -> tuple[nn.Module, Defense]:
    """The backbone and defense that `model=<model> defense=<defense> train_attack_steps=<k>` trains."""
    cfg = compose_config(
        "train", [f"model={model}", f"defense={defense}", f"train_attack_steps={attack_steps}", "dataset=cifar10"]
    )
    return instantiate(cfg.model), instantiate(cfg.defense)


class RandomImages(InMemoryDataModule):
    """`n` CIFAR-shaped random uint8 images with random labels."""

    def __init__(self, n: int, **kwargs) -> None:
        super().__init__(num_classes=10, mean=[0.5] * 3, std=[0.25] * 3, **kwargs)
        self.n = n

    def load(self) -> ImageArrays:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (self.n, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, self.n)
        return ImageArrays(x, y, x[:256], y[:256])
