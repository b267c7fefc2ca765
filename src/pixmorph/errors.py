"""The errors pixmorph reports to a user: each message names the file or setting and the fix."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is unknown or has a bad value; the message names it and the valid choices."""


class DataError(ValueError):
    """A data file or folder is missing, unreadable or of the wrong shape."""


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt or not pixmorph's."""
