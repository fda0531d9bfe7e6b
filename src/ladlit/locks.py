"""Locks that let several processes share run directories safely (the `filelock` library).

A run directory is trained by one process at a time: a second training started in it (a rerun
while the first still trains, a requeued job that overlaps its predecessor) is refused with one
message naming the other process, instead of both resuming from the same last.ckpt and writing
over each other. Evaluation records beside a checkpoint are merged under a lock, so two
evaluations of one run (best and last in two lanes) serialise their read-merge-write and neither
result is lost. A checkpoint is written and read under a lock of its folder, so an evaluation
reads either the old or the new best.ckpt whole, never one replaced while it reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ladlit.errors import LadlitError

TRAIN_LOCK = ".train.lock"
TRAIN_OWNER = ".train.owner"  # who holds the lock (filelock truncates the lock file itself on every open)
CHECKPOINT_LOCK = ".checkpoints.lock"
RECORD_LOCK_SECONDS = 600.0
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


class RunDirectoryBusyError(LadlitError):
    """Another process is training in this run directory."""


def is_leader_process() -> bool:
    """False in the secondary processes of a distributed run (their rank 0 holds the run's lock)."""
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in RANK_VARIABLES)


@contextlib.contextmanager
def training_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` for training; raise RunDirectoryBusyError at once if another process does."""
    if not is_leader_process():
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / TRAIN_LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunDirectoryBusyError(
            f"{run_dir} is being trained by another process ({_owner(run_dir)}). Wait for it to finish "
            "(a finished run is never retrained), stop it, or train into another hydra.run.dir."
        ) from None
    owner = run_dir / TRAIN_OWNER
    owner.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv),
            }
        )
    )
    try:
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def _owner(run_dir: Path) -> str:
    try:
        info = json.loads((run_dir / TRAIN_OWNER).read_text())
    except (OSError, ValueError):
        return "its process id is not recorded"
    return f"pid {info.get('pid')} on {info.get('host')}, since {info.get('since')}: {info.get('command')}"


@contextlib.contextmanager
def checkpoint_lock(folder: Path, reading: bool = False) -> Iterator[None]:
    """Held while a checkpoint in `folder` is written (training) or read (evaluation), so that an
    evaluation never reads a best.ckpt half replaced, nor records the identity of other weights
    than it loaded. A reader locks only where a training run has written (its lock file is there,
    made before its first checkpoint), so weights from elsewhere get no lock file beside them; a
    folder this process cannot write in is read unlocked: nothing trains there."""
    if reading and not (Path(folder) / CHECKPOINT_LOCK).exists():
        yield
        return
    try:
        lock = FileLock(Path(folder) / CHECKPOINT_LOCK)
        lock.acquire(timeout=RECORD_LOCK_SECONDS)
    except PermissionError:
        yield
        return
    except Timeout:
        raise LadlitError(
            f"the checkpoints in {folder} have been locked for {RECORD_LOCK_SECONDS:.0f} s; if nothing is training "
            f"or evaluating there, delete {Path(folder) / CHECKPOINT_LOCK} and rerun"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def record_lock(record: Path, timeout: float = RECORD_LOCK_SECONDS) -> Iterator[None]:
    """Serialise read-merge-write of an evaluation record among processes."""
    lock = FileLock(record.with_name(record.name + ".lock"))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LadlitError(
            f"{record} has been locked by another evaluation for {timeout:.0f} s; "
            f"if no evaluation of this run is going on, delete {lock.lock_file} and rerun"
        ) from None
    try:
        yield
    finally:
        lock.release()
