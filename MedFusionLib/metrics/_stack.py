"""The unit of work of every metric kernel: a stack of B slices, each a (sources..., fused) set.

Kernels take a :class:`Stack` and return one value per slice (shape ``(B,)``), so a single 2-D triple
(B = 1) and a chunk of volume slices share one vectorised code path. Intermediates used by several
metrics (quantised images, histograms, window statistics) are cached on the stack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")


class Stack:
    """Sources and fused image as float64 ``(B, H, W)`` arrays (owned copies; kernels must not modify them)."""

    def __init__(self, sources: list[np.ndarray], fused: np.ndarray) -> None:
        self.sources = sources
        self.fused = fused
        self._cache: dict[str, object] = {}

    @property
    def batch(self) -> int:
        return self.fused.shape[0]

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """Return the cached intermediate ``key``, building it on first use."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]  # type: ignore[return-value]
