"""Exceptions shared by the whole library.

User errors (bad files, bad options, failed registration) derive from `MedFusionError`; the CLI prints their
message on one line without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MedFusionError(Exception):
    """A problem the user can fix (bad input file, bad option, failed registration)."""


class InputError(MedFusionError):
    """An input file or array is unusable (missing, unreadable, wrong shape, NaN, constant...)."""


class RegistrationError(MedFusionError):
    """Registration did not converge to a trustworthy alignment."""


class OperationCancelled(MedFusionError):
    """The user cancelled a long-running operation; nothing was written."""
