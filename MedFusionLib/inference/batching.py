"""How a network's forward pass is applied to a slice batch or a volume, whatever runs it (ONNX Runtime or
torch): chunks of bounded pixel count, tri-planar 2.5-D, and 3-D tiles with a halo. Plain numpy, no torch.

A *forward* here maps a float32 array ``(n_inputs, batch, 1, *spatial)`` in 0..1 to ``(batch, 1, *spatial)``
(not clamped). Each chunk checks the enclosing cancel scope, so Cancel is honoured within one chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from MedFusionLib.core.progress import check_scope

Forward = Callable[[np.ndarray], np.ndarray]

MAX_CHUNK_PIXELS = 1 << 21  # per input, per forward pass in slice mode (~2 M pixels: 8 slices of 512 x 512)
TILE = 96  # core edge of a 3-D tile


def run_slices(
    forward: Forward, stack: np.ndarray, max_pixels: int = MAX_CHUNK_PIXELS, add_to: np.ndarray | None = None
) -> np.ndarray:
    """``stack`` (n, batch, H, W) float32 -> (batch, H, W) in 0..1; at most ``max_pixels`` pixels per input go
    through ``forward`` at once (wide networks pass less). With ``add_to`` ((batch, H, W), a view is fine) the
    result is added into it chunk by chunk instead of filling a new array (the tri-planar sum)."""
    n, batch, h, w = stack.shape
    chunk = max(1, max_pixels // max(1, h * w))
    out = np.empty((batch, h, w), np.float32) if add_to is None else add_to
    for start in range(0, batch, chunk):
        check_scope()
        x = np.ascontiguousarray(stack[:, start : start + chunk, None], dtype=np.float32)
        fused = np.clip(forward(x)[:, 0], 0.0, 1.0)
        if add_to is None:
            out[start : start + chunk] = fused
        else:
            out[start : start + chunk] += fused
    return out


def run_triplanar(forward: Forward, stack: np.ndarray, max_pixels: int = MAX_CHUNK_PIXELS) -> np.ndarray:
    """2.5-D volume mode of a 2-D network: :func:`run_slices` along each of the three axes of ``stack``
    (n, D, H, W), the three results averaged (fewer seams than one axis, at three times the cost)."""
    out = np.zeros(stack.shape[1:], np.float32)
    for axis in range(3):  # each axis adds into ``out`` chunk by chunk: no volume-sized result per axis
        run_slices(forward, np.moveaxis(stack, axis + 1, 1), max_pixels, add_to=np.moveaxis(out, axis, 0))
    out /= np.float32(3.0)
    return out


def run_2d(forward: Forward, stack: np.ndarray, mode: str, max_pixels: int = MAX_CHUNK_PIXELS) -> np.ndarray:
    """A 2-D network over a slice batch (``slice`` mode) or tri-planarly (``volume``)."""
    run = run_slices if mode == "slice" else run_triplanar
    return run(forward, stack, max_pixels)


def run_tiled_3d(forward: Forward, stack: np.ndarray, halo: int, tile: int = TILE) -> np.ndarray:
    """``forward``: (n, 1, 1, d, h, w) -> (1, 1, d, h, w); ``stack`` (n, D, H, W) -> (D, H, W) in cubic tiles of
    edge ``tile`` with a ``halo`` wider than the network's receptive radius, so the result equals whole-volume
    inference while memory stays bounded whatever the volume size."""
    shape = stack.shape[1:]
    out = np.empty(shape, np.float32)
    starts = [range(0, s, tile) for s in shape]
    for z in starts[0]:
        for y in starts[1]:
            for x in starts[2]:
                check_scope()
                core = [(z, min(z + tile, shape[0])), (y, min(y + tile, shape[1])), (x, min(x + tile, shape[2]))]
                outer = [(max(0, a - halo), min(s, b + halo)) for (a, b), s in zip(core, shape)]
                sub = stack[:, outer[0][0] : outer[0][1], outer[1][0] : outer[1][1], outer[2][0] : outer[2][1]]
                res = forward(np.ascontiguousarray(sub, dtype=np.float32)[:, None, None])[0, 0]
                inner = tuple(slice(a - oa, b - oa) for (a, b), (oa, _) in zip(core, outer))
                out[core[0][0] : core[0][1], core[1][0] : core[1][1], core[2][0] : core[2][1]] = np.clip(
                    res[inner], 0.0, 1.0
                )
    return out
