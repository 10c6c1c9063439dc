"""Engine exceptions: each message names the file/key/backend and the fix."""

from __future__ import annotations


class EngineError(RuntimeError):
    """Base class of engine errors."""


class CheckpointError(EngineError):
    """A checkpoint file cannot be read or does not match the model (names file, keys, fix)."""


class BackendUnavailableError(EngineError):
    """An explicitly requested backend/device/precision cannot run here (names the fix)."""
