"""liu-cnn on ONNX Runtime: the score-to-weight graph (``liu-cnn.onnx``: the siamese network's symmetric score map
spread over its patches) and the fixed post-processing of ``inference/liu_cnn.py`` in numpy (decision map with
consistency verification, the medical paper's similarity pyramid, the envelope). No torch.
"""

from __future__ import annotations

import math

import numpy as np

from MedFusionLib.core.progress import check_scope
from MedFusionLib.inference import pyramids
from MedFusionLib.inference.liu_decision import MIN_FRACTION, decision_map
from MedFusionLib.inference.weight_map_onnx import graph, setting, triplanar_weights

NAME = "liu-cnn"
THRESHOLD = 0.6  # as inference/liu_cnn.py
WEIGHTS = ("soft", "decision")
CHUNK_PIXELS = (1 << 21) // 8  # the branches' 128- and 256-channel maps at (half) full resolution


def pair_weights(x: np.ndarray) -> np.ndarray:
    """Weight map of the first input, (b, 1, H, W), from the pair ``x`` (2, b, 1, H, W): replicate-padded to
    at least one patch and to even sides (the patches at stride 2 then cover every pixel), cropped back."""
    patch = int(setting(NAME, "patch", 16))
    h, w = x.shape[-2:]
    ph, pw = max(patch, h + h % 2) - h, max(patch, w + w % 2) - w
    if ph or pw:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="edge")
    return graph(NAME)(x)[..., :h, :w]


def slice_weights(stack: np.ndarray) -> np.ndarray:
    """Soft weight maps (batch, H, W) of the first input of ``stack`` (2, batch, H, W), in bounded chunks."""
    _, batch, h, w = stack.shape
    chunk = max(1, CHUNK_PIXELS // max(1, h * w))
    out = np.empty((batch, h, w), np.float32)
    for start in range(0, batch, chunk):
        check_scope()
        out[start : start + chunk] = pair_weights(stack[:, start : start + chunk, None])[:, 0]
    return out


def _fuse_level(la: np.ndarray, lb: np.ndarray, w: np.ndarray, threshold: float, dims: int) -> np.ndarray:
    """Averaging by ``w`` where the local similarity reaches ``threshold``, else the larger local energy's."""
    ea, eb = pyramids.window_sum(la * la, dims), pyramids.window_sum(lb * lb, dims)
    energy = ea + eb
    cross = 2 * pyramids.window_sum(la * lb, dims)
    similarity = np.where(energy > 1e-12, cross / np.maximum(energy, np.float32(1e-12)), np.float32(1.0))
    selected = np.where(ea >= eb, la, lb)
    return np.where(similarity >= threshold, w * la + (1 - w) * lb, selected)


def similarity_pyramid_fuse(
    a: np.ndarray, b: np.ndarray, w: np.ndarray, dims: int, threshold: float = THRESHOLD
) -> np.ndarray:
    """The medical paper's pyramid fusion of ``a`` and ``b`` by ``w`` (same shapes, ``dims`` spatial axes
    last), levels floor(log2(min edge)), replicate-padded to a multiple of 2^levels and cropped back."""
    spatial = a.shape[a.ndim - dims :]
    levels = max(0, int(math.floor(math.log2(max(1, min(spatial))))))
    x = pyramids.pad_to_multiple(np.stack([a, b, w]).astype(np.float32, copy=False), 2**levels, dims)
    gauss = [x]
    for _ in range(levels):
        gauss.append(pyramids.down(gauss[-1], dims))
    top = gauss[-1]
    fused = _fuse_level(top[0], top[1], top[2], threshold, dims)
    for level in range(levels - 1, -1, -1):
        g = gauss[level]
        lap = g[:2] - pyramids.up(gauss[level + 1][:2], dims)
        fused = pyramids.up(fused, dims) + _fuse_level(lap[0], lap[1], g[2], threshold, dims)
    return fused[(Ellipsis, *(slice(0, s) for s in spatial))]


def _envelope(fused: np.ndarray, a: np.ndarray, b: np.ndarray, envelope: bool) -> np.ndarray:
    if envelope:
        return np.minimum(np.maximum(fused, np.minimum(a, b)), np.maximum(a, b)).astype(np.float32)
    return np.clip(fused, 0.0, 1.0).astype(np.float32)


def fuse(
    stack: np.ndarray, mode: str, weights: str = "soft", threshold: float = THRESHOLD, envelope: bool = False
) -> np.ndarray:
    """Liu et al.'s fusion of ``stack`` ((2, batch, H, W) slices or a (2, D, H, W) volume), as
    ``inference/liu_cnn.fuse`` computes it in torch; 0..1 float32."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    stack = stack.astype(np.float32, copy=False)
    if mode == "slice":
        w = slice_weights(stack)
        if weights == "decision":
            w = decision_map(w, MIN_FRACTION, per_slice=True)
        fused = similarity_pyramid_fuse(stack[0], stack[1], w, 2, threshold)
        return _envelope(fused, stack[0], stack[1], envelope)
    w = triplanar_weights(lambda x: pair_weights(x)[None], stack)[0]
    if weights == "decision":
        w = decision_map(w, MIN_FRACTION, per_slice=False)
    fused = similarity_pyramid_fuse(stack[0], stack[1], w, 3, threshold)
    return _envelope(fused, stack[0], stack[1], envelope)
