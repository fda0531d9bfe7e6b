"""What the command-line tools print: one console (stderr), and errors as one clear message."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from hydra.errors import InstantiationException
from rich.console import Console

from ladlit.errors import LadlitError

console = Console(stderr=True)


def report_errors(main: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-facing errors into one message and exit code 2, without a traceback."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except (LadlitError, InstantiationException) as err:
            exit_with_error(err)

    return wrapper


def exit_with_error(err: BaseException) -> NoReturn:
    """Print `err` as one line and exit with code 2. (A function of its own, so a launcher that
    pickles the wrapper above by value references it by name, not the console object.)"""
    console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
    sys.exit(2)
