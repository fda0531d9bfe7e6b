"""Single-threaded worker processes for attacks that split a batch.

Two 1-thread processes on two cores attack small batches faster than one 2-thread process
(experiments/RESULTS.md 4.3). Workers are fresh interpreters (`python -c 'from ladlit.attacks.worker import main; main()'`)
that read calls from a pipe and keep what a call stores in `STATE` for the next one (the model,
sent once). Fresh interpreters need no `if __name__ == "__main__"` guard in the caller's script,
as multiprocessing's spawn would, and inherit no OpenMP state, as a fork would.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

import torch

STATE: dict[str, Any] = {}  # a worker's memory between calls


class WorkerPool:
    """`n` worker processes; `map` runs one call per worker, at once, and returns the results in order."""

    def __init__(self, n: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
        # -c, not -m: the package imports this module first, and runpy would warn about running it again
        command = [sys.executable, "-c", "from ladlit.attacks.worker import main; main()"]
        self.processes = [
            subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(n)
        ]

    def map(self, function: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """`[function(*args) for args in calls]`, call i in worker i; `function` must be importable
        by name (module level) and the arguments picklable."""
        if len(calls) > len(self.processes):
            raise ValueError(f"{len(calls)} calls for {len(self.processes)} workers")
        for process, args in zip(self.processes, calls):
            _send(process.stdin, (function, args))
        results = [_receive(process.stdout) for process, _ in zip(self.processes, calls)]
        for ok, value in results:
            if not ok:
                raise RuntimeError(f"an attack worker failed:\n{value}")
        return [value for _, value in results]

    def close(self) -> None:
        for process in self.processes:
            process.stdin.close()
        for process in self.processes:
            process.wait()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _send(stream: IO[bytes], obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    stream.write(struct.pack("<Q", buffer.tell()) + buffer.getvalue())
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        raise RuntimeError("an attack worker ended without answering (its error is printed above)")
    (size,) = struct.unpack("<Q", header)
    return torch.load(io.BytesIO(stream.read(size)), weights_only=False)


def main() -> None:
    torch.set_num_threads(1)
    inbox, outbox = sys.stdin.buffer, os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints, Python's or C's, must not corrupt the answers
    while header := inbox.read(8):
        (size,) = struct.unpack("<Q", header)
        function, args = torch.load(io.BytesIO(inbox.read(size)), weights_only=False)
        try:
            answer = (True, function(*args))
        except Exception:  # noqa: BLE001 - sent back, raised in the caller
            answer = (False, traceback.format_exc())
        _send(outbox, answer)


if __name__ == "__main__":
    main()
