"""The errors users see: bad input named with the fix, printed by the CLI as one line (exit 2).

Every error that is the user's to fix (a file, a field, a setting, a device they asked for)
derives from :class:`UserError`; the CLI (``app/cli.py``) catches that base once and shows a
traceback only with ``--debug``. Each subclass also derives from the builtin its callers caught
before (``ValueError``, ``RuntimeError``, ``FileNotFoundError``), so ``except ValueError`` keeps
working. They live here, at the bottom, so every package raises the same classes.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input the user can fix; the message names the input and the fix.

    Args:
        message: what is wrong (already naming the file/field where the raiser knows them).
        file: the file or folder at fault, if any (prefixed to the message when not in it).
        field: the key/field/argument at fault, if any (prefixed likewise).
        fix: what to do, if not said in the message (appended).
    """

    def __init__(
        self, message: str = "", *, file: str | Path | None = None, field: str | None = None, fix: str | None = None
    ) -> None:
        self.file, self.field, self.fix = file, field, fix
        text = str(message)
        if field is not None and str(field) not in text:
            text = f"{field}: {text}"
        if file is not None and str(file) not in text:
            text = f"{file}: {text}"
        if fix:
            text = f"{text}; {fix}"
        super().__init__(text)


class InputError(UserError, ValueError):
    """A command-line argument or input value is wrong."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist or cannot be read as what it should be."""


class ConfigError(UserError, ValueError):
    """A configuration file, key or value is wrong; the message names it and the fix."""


class CalibrationError(UserError, ValueError):
    """A calibration is malformed or inconsistent; the message names file, camera and field."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file cannot be read or does not match the model (names file, keys, fix)."""


class BackendUnavailableError(UserError, RuntimeError):
    """An explicitly requested backend/device/precision cannot run here (names the fix)."""


class DatasetError(UserError, ValueError):
    """A dataset file or folder is missing or malformed; the message names the path, field and fix."""


class MessageError(UserError, ValueError):
    """A message on the wire is malformed; the message names the field and what was expected."""


class EndpointError(ConfigError):
    """An endpoint string is malformed or would expose the stream off-host unintentionally."""


class SourceError(UserError, RuntimeError):
    """A source cannot be opened or read; the message names the camera, the URI and the fix."""


class SessionError(UserError, ValueError):
    """A session folder is missing, unreadable or inconsistent; the message names the file."""


class ShmError(UserError, RuntimeError):
    """A shared-memory view is missing, overwritten or malformed (the message names the segment)."""


class ExportError(UserError, RuntimeError):
    """An export cannot be written (bad arguments, unwritable folder, video encoder missing)."""


class BvhError(UserError, ValueError):
    """A take that cannot be exported as BVH (the message names the input and the fix)."""
