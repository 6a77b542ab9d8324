"""Progress reporting and cancellation conventions used by every long-running function.

A long function takes two optional keyword arguments:

* ``progress(fraction: float, message: str) -> None`` with ``fraction`` in 0..1, called now and then;
* ``cancel() -> bool`` polled between units of work; when it returns True the function raises
  :class:`~MedFusionLib.errors.OperationCancelled` and leaves nothing written.

Plain callables keep the library free of Qt and easy to drive from the CLI, Slicer or a web viewer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from MedFusionLib.core.errors import OperationCancelled

ProgressCallback = Callable[[float, str], None]
CancelCallback = Callable[[], bool]


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Call ``progress`` if given, clamping the fraction to 0..1."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def check_cancel(cancel: CancelCallback | None) -> None:
    """Raise OperationCancelled when the user asked to stop."""
    if cancel is not None and cancel():
        raise OperationCancelled("cancelled by the user")


def sub_progress(progress: ProgressCallback | None, start: float, stop: float) -> ProgressCallback | None:
    """Map a sub-task's 0..1 progress into the ``start..stop`` part of the parent's range."""
    if progress is None:
        return None

    def _scaled(fraction: float, message: str) -> None:
        report(progress, start + (stop - start) * fraction, message)

    return _scaled


_SCOPE_CANCEL: ContextVar[CancelCallback | None] = ContextVar("medfusion_cancel", default=None)


@contextmanager
def cancel_scope(cancel: CancelCallback | None) -> Iterator[None]:
    """Make ``cancel`` visible to :func:`check_scope` in the code below (a method's ``fuse_volume`` takes no
    callbacks, so the inference loops it runs check the scope instead: Cancel is honoured within one chunk)."""
    token = _SCOPE_CANCEL.set(cancel)
    try:
        yield
    finally:
        _SCOPE_CANCEL.reset(token)


def check_scope() -> None:
    """Raise OperationCancelled when the enclosing :func:`cancel_scope`'s callback asks to stop."""
    check_cancel(_SCOPE_CANCEL.get())
