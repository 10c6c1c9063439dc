"""Exceptions of the training package."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset file or folder is missing or malformed; the message names the path, field and fix."""
