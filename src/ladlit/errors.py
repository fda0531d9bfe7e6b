"""User-facing errors: each says what went wrong and what to do, and is printed without a traceback."""


class LadlitError(Exception):
    """Base class for errors the command-line tools report as one clear message."""


class ConfigError(LadlitError, ValueError):
    """A configuration value is out of its valid range.

    `key`: the constructor parameter the message starts with, when it names one, so that
    `ladlit.config.build` can put the value's place in the config in front of it."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DataNotFoundError(LadlitError, FileNotFoundError):
    """A dataset is missing and cannot be downloaded."""


class CheckpointError(LadlitError):
    """A checkpoint is missing, corrupt, or does not match the model it should load into."""
