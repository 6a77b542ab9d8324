"""Where a run's time goes: named stages (read, prepare, fuse, write ...) timed when someone records them.

The pipeline wraps each stage in :func:`stage`; it costs nothing unless a caller records (:func:`recording`,
what ``medfusion fuse --profile`` does), so the library never prints or logs timings on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_RECORD: ContextVar[list[tuple[str, float]] | None] = ContextVar("medfusion_stages", default=None)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the code below as stage ``name`` when a :func:`recording` is active."""
    record = _RECORD.get()
    if record is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        record.append((name, time.perf_counter() - start))


@contextmanager
def recording() -> Iterator[list[tuple[str, float]]]:
    """Collect the ``(stage, seconds)`` of the code below, in the order they end."""
    record: list[tuple[str, float]] = []
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)


def summary(record: list[tuple[str, float]]) -> str:
    """One line: each stage's seconds (repeated stages summed, in first-seen order)."""
    totals: dict[str, float] = {}
    for name, seconds in record:
        totals[name] = totals.get(name, 0.0) + seconds
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in totals.items())
