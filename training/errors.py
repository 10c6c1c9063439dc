"""Exceptions of the training package (defined with the UserError family in calib.common.errors)."""

from __future__ import annotations

from calib.common.errors import DatasetError

__all__ = ["DatasetError"]
