"""User-facing errors: each says what went wrong and what to do, and is printed without a traceback."""


class LadlitError(Exception):
    """Base class for errors the command-line tools report as one clear message."""


class ConfigError(LadlitError, ValueError):
    """A configuration value is out of its valid range."""


class DataNotFoundError(LadlitError, FileNotFoundError):
    """A dataset is missing and cannot be downloaded."""


class CheckpointError(LadlitError):
    """A checkpoint is missing, corrupt, or does not match the model it should load into."""
