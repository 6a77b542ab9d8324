"""Exceptions shared by the whole library.

User errors (bad files, bad options, failed registration) derive from `MedFusionError`; the CLI prints their
message on one line without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MedFusionError(Exception):
    """A problem the user can fix (bad input file, bad option, failed registration).

    The message is always one line: line breaks and runs of white space (as in some libraries' own error texts
    that end up inside ours) are folded into single spaces."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(" ".join(str(message).split()), *args)


class InputError(MedFusionError):
    """An input file or array is unusable (missing, unreadable, wrong shape, NaN, constant...)."""


class RegistrationError(MedFusionError):
    """Registration did not converge to a trustworthy alignment."""


class OperationCancelled(MedFusionError):
    """The user cancelled a long-running operation; nothing was written."""


class OutputError(MedFusionError):
    """An output cannot be written (it would replace an input, no permission, disk full, read-only)."""


class ResourceError(MedFusionError):
    """A run needs more memory than the machine has available."""


def describe_os_error(err: OSError, path: object = None) -> str:
    """One line for an operating-system error: ``<file>: <reason>`` (no errno numbers, no traceback)."""
    reason = err.strerror or str(err) or type(err).__name__
    reason = reason[:1].lower() + reason[1:]
    target = path if path is not None else err.filename
    return f"{target}: {reason}" if target is not None else reason
