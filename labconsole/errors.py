"""Errors meant for people: one readable message, exit code 2, no traceback unless --debug."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (file, preset key, value, checkpoint).

    The message names the file or key and says what was expected. The CLI prints it
    without a traceback and exits with code 2.
    """

    exit_code = 2


class DataError(UserError):
    """A dataset folder, file or column is missing or unreadable."""


class PresetError(UserError):
    """A preset file has an unknown key, a wrong type or an invalid value."""


class CheckpointError(UserError):
    """A checkpoint is missing or does not fit the requested backbone."""


class StorageError(UserError):
    """A file cannot be written: the disk is full, read-only, or not ours to write."""
