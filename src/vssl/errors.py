"""Errors vssl raises for bad input: each names the file (or field) and the problem."""

from __future__ import annotations

from pathlib import Path


class VsslError(Exception):
    """Base class of every error vssl raises on purpose."""


class MediaError(VsslError, ValueError):
    """An image, audio or video file that cannot be used.

    The message always starts with the path, so a user can find the file at once.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetError(VsslError, ValueError):
    """A dataset root, annotation file or field that is missing or malformed."""


class ConfigError(VsslError, ValueError):
    """A configuration value or command-line override that is not valid."""
