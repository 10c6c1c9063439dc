"""Engine exceptions: each message names the file/key/backend and the fix.

Both are :class:`calib.common.errors.UserError` subclasses (defined there with the rest of the
family the CLI prints as one line).
"""

from __future__ import annotations

from calib.common.errors import BackendUnavailableError, CheckpointError

__all__ = ["BackendUnavailableError", "CheckpointError"]
