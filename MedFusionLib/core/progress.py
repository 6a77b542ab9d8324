"""Progress reporting and cancellation conventions used by every long-running function.

A long function takes two optional keyword arguments:

* ``progress(fraction: float, message: str) -> None`` with ``fraction`` in 0..1, called now and then;
* ``cancel() -> bool`` polled between units of work; when it returns True the function raises
  :class:`~MedFusionLib.core.errors.OperationCancelled` and leaves nothing written.

Plain callables keep the library free of Qt and easy to drive from the CLI, Slicer or a web viewer.

Signals: :func:`install_interrupt_handlers` (used by the CLI) makes SIGINT and SIGTERM raise
KeyboardInterrupt, except inside a :func:`native_section` (ITK's ``Execute``), where an exception raised in
ITK's iteration callback would be swallowed: there the handler only sets a flag, the callback turns it into
``StopRegistration()``, and the section raises once ITK has returned. ``check_cancel`` also honours the flag.
"""

from __future__ import annotations

import signal
import threading
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


_interrupted = threading.Event()
_native_depth = 0
_previous: dict[int, object] = {}


def interrupt_requested() -> bool:
    """True once SIGINT/SIGTERM arrived (with the handlers installed) and the run has not yet stopped."""
    return _interrupted.is_set()


def clear_interrupt() -> None:
    """Forget a past interrupt (a new run starts)."""
    _interrupted.clear()


def _on_signal(signum: int, frame: object) -> None:
    _interrupted.set()
    if _native_depth == 0:
        raise KeyboardInterrupt(signal.Signals(signum).name)


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM stop the run (KeyboardInterrupt, deferred inside native sections); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return
    clear_interrupt()
    for signum in (signal.SIGINT, signal.SIGTERM):
        _previous.setdefault(signum, signal.getsignal(signum))
        signal.signal(signum, _on_signal)


def uninstall_interrupt_handlers() -> None:
    """Put back the handlers :func:`install_interrupt_handlers` replaced (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in list(_previous.items()):
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        del _previous[signum]
    clear_interrupt()


@contextmanager
def native_section() -> Iterator[None]:
    """A stretch of native code that calls back into Python (ITK's Execute with an iteration command): a
    signal inside only sets the flag (poll :func:`interrupt_requested`); the interrupt is raised on exit.

    Without the CLI's handlers (the library in a script, a notebook or Slicer's console), Python's default
    SIGINT handler would raise inside ITK's callback, where ITK swallows it: the section swaps in the flag
    handler for its duration, so Ctrl-C still stops the run."""
    global _native_depth
    swapped = None
    if _native_depth == 0 and threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            swapped = signal.signal(signal.SIGINT, _on_signal)
    _native_depth += 1
    try:
        yield
    finally:
        _native_depth -= 1
        if swapped is not None:
            signal.signal(signal.SIGINT, swapped)
    if _native_depth == 0 and _interrupted.is_set():
        if swapped is not None:
            _interrupted.clear()  # the flag was this section's own: the caller's KeyboardInterrupt says it all
        raise KeyboardInterrupt("interrupted")


def check_cancel(cancel: CancelCallback | None) -> None:
    """Raise OperationCancelled when the user asked to stop (or KeyboardInterrupt after a signal)."""
    if _interrupted.is_set():
        raise KeyboardInterrupt("interrupted")
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
