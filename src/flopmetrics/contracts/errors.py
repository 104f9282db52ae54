"""Exception types raised in one package and caught in another; each message names what is wrong."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key and the value."""


class TargetError(ValueError):
    """A target (where a job runs) that names no CPU, CUDA device or datasheet GPU."""


class ModelConfigError(ValueError):
    """A model spec (preset, config.json or inline mapping) that cannot be built."""


class MeterError(RuntimeError):
    """A meter could not produce a reading (and will not make one up)."""


class WindowError(RuntimeError):
    """A measurement window used out of order (closed before it was opened, opened twice)."""


class MergeError(ValueError):
    """A per-job file that cannot be merged as it is; the message names the file."""
