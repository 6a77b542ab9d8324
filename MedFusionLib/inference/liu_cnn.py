"""The fixed (not learned) half of Liu et al.'s CNN fusion: from the network's score map to the fused image.

The network (``networks/liu_cnn.py``) only scores which of two patches is the more informative one. Here, as in
Liu, Chen, Peng & Wang (Information Fusion 36, 2017) and Liu, Chen, Cheng & Peng (FUSION 2017):

1. :func:`focus_map`: each score of the score map (one per 16 x 16 patch, stride 2) is given to every pixel of
   its patch and overlapping patches are averaged: a per-pixel weight map ``W`` of the first input, in 0..1.
2. :func:`decision_map` (the multi-focus paper's "decision" weights): ``W`` thresholded at 0.5 into a binary map,
   then consistency verification: :func:`remove_small_regions` reverses every connected region (of ones or of
   zeros) smaller than ``min_fraction`` (0.01) of the image area.
3. :func:`similarity_pyramid_fuse` (the medical paper's fusion): Laplacian pyramids of the two sources, a
   Gaussian pyramid of the weight map (``W`` itself: "soft" weights as in the medical paper, or the verified
   binary map); at every level the local similarity ``M = 2 sum(L_A L_B) / (sum L_A^2 + sum L_B^2)`` over a
   3 x 3 window chooses the mode: where ``M >= threshold`` (0.6) *averaging*, ``G_W L_A + (1 - G_W) L_B``,
   elsewhere *selection*, the coefficient of the input with the larger local energy ``sum L^2``; then the
   pyramid is collapsed.

Departure: the multi-focus paper ends with a guided filter on the decision map and a single-scale weighted sum;
we blend every weight map through the medical paper's pyramid instead (the verified binary map is smoothed by
its own Gaussian pyramid). All steps are written for 2-D and 3-D tensors, so volume mode makes one decision per
voxel: tri-planar weight maps (the 2-D network along the three axes, averaged), verified in 3-D, a 3-D pyramid.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from MedFusionLib.core.progress import check_scope
from MedFusionLib.inference.liu_decision import MIN_FRACTION, decision_map, remove_small_regions  # noqa: F401 (re-exported)
from MedFusionLib.inference.runtime import MAX_CHUNK_PIXELS, load_network, torch_threads
from MedFusionLib.inference.weight_blending import triplanar_weights
from MedFusionLib.networks.layers import pyramid_down, pyramid_up
from MedFusionLib.networks.liu_cnn import LiuSiameseCNN

THRESHOLD = 0.6  # local-similarity threshold between selection and averaging (the medical paper's t)
WEIGHTS = ("soft", "decision")
CHUNK_PIXELS = MAX_CHUNK_PIXELS // 8  # the branches' 128- and 256-channel maps at (half) full resolution


def focus_map(scores: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """Score map (batch, 1, h, w) -> per-pixel weights (batch, 1, (h - 1) stride + patch, ...): each pixel gets the
    mean score of the patches that cover it."""
    ones = torch.ones(1, 1, patch, patch, dtype=scores.dtype, device=scores.device)
    total = F.conv_transpose2d(scores, ones, stride=stride)
    count = F.conv_transpose2d(torch.ones_like(scores), ones, stride=stride)
    return total / count


def score_weights(net: LiuSiameseCNN, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Weight map (batch, 1, H, W) of ``a`` against ``b`` (both (batch, 1, H, W) in 0..1) from ``net``'s score
    map. Images are replicate-padded to at least one patch and to an even size (so that the patches at stride 2
    cover every pixel), then cropped back."""
    h, w = a.shape[-2:]
    ph, pw = max(net.patch, h + h % 2) - h, max(net.patch, w + w % 2) - w
    if ph or pw:
        a = F.pad(a, (0, pw, 0, ph), mode="replicate")
        b = F.pad(b, (0, pw, 0, ph), mode="replicate")
    weights = focus_map(net.score_map(a, b), net.patch, net.stride)
    return weights[..., :h, :w]


def slice_weights(net: LiuSiameseCNN, stack: np.ndarray) -> np.ndarray:
    """Soft weight maps (batch, H, W) of the first input of ``stack`` (2, batch, H, W), in chunks of bounded size."""
    _, batch, h, w = stack.shape
    chunk = max(1, CHUNK_PIXELS // max(1, h * w))
    out = np.empty((batch, h, w), np.float32)
    with torch_threads(), torch.inference_mode():
        for start in range(0, batch, chunk):
            check_scope()
            x = torch.from_numpy(np.ascontiguousarray(stack[:, start : start + chunk], dtype=np.float32)).unsqueeze(2)
            out[start : start + chunk] = score_weights(net, x[0], x[1])[:, 0].numpy()
    return out


def _window_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over the 3 x 3 (x 3) window around each coefficient (zeros outside)."""
    pool = F.avg_pool2d if x.ndim == 4 else F.avg_pool3d
    return pool(F.pad(x, [1, 1] * (x.ndim - 2)), 3, stride=1) * 3 ** (x.ndim - 2)


def fuse_level(la: torch.Tensor, lb: torch.Tensor, w: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """One pyramid level: averaging by ``w`` where the local similarity is at least ``threshold``, else selection
    of the coefficient with the larger 3 x 3 (x 3) local energy."""
    ea, eb = _window_sum(la * la), _window_sum(lb * lb)
    energy = ea + eb
    similarity = torch.where(energy > 1e-12, 2 * _window_sum(la * lb) / energy.clamp_min(1e-12), torch.ones_like(ea))
    selected = torch.where(ea >= eb, la, lb)
    return torch.where(similarity >= threshold, w * la + (1 - w) * lb, selected)


def pyramid_levels(spatial) -> int:
    """The medical paper's decomposition depth: floor(log2 of the smallest edge)."""
    return max(0, int(math.floor(math.log2(max(1, min(spatial))))))


def similarity_pyramid_fuse(
    a: torch.Tensor, b: torch.Tensor, w: torch.Tensor, levels: int | None = None, threshold: float = THRESHOLD
) -> torch.Tensor:
    """Fuse ``a`` and ``b`` (batch, 1, *spatial; 2-D or 3-D) with the weight map ``w`` of ``a`` (same shape) in a
    Laplacian pyramid, choosing selection or averaging per coefficient by local similarity (:func:`fuse_level`).

    ``levels`` defaults to floor(log2(min edge)); sizes are replicate-padded to a multiple of 2^levels, then cropped.
    """
    spatial = a.shape[2:]
    levels = pyramid_levels(spatial) if levels is None else levels
    m = 2**levels
    pad: list[int] = []
    for s in reversed(spatial):
        pad += [0, (-s) % m]
    x = torch.cat([a, b, w], dim=1).float()
    if any(pad):
        x = F.pad(x, pad, mode="replicate")
    gauss = [x]
    for _ in range(levels):
        gauss.append(pyramid_down(gauss[-1]))
    top = gauss[-1]
    fused = fuse_level(top[:, :1], top[:, 1:2], top[:, 2:3], threshold)
    for level in range(levels - 1, -1, -1):
        g, size = gauss[level], gauss[level].shape[2:]
        lap = g[:, :2] - pyramid_up(gauss[level + 1][:, :2], size)
        fused = pyramid_up(fused, size) + fuse_level(lap[:, :1], lap[:, 1:2], g[:, 2:3], threshold)
    crop = (slice(None), slice(None)) + tuple(slice(0, s) for s in spatial)
    return fused[crop]


def _envelope(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, envelope: bool) -> torch.Tensor:
    """``fused`` clipped pixel by pixel to the sources' range (``envelope``), else to 0..1."""
    if envelope:
        return torch.minimum(torch.maximum(fused, torch.minimum(a, b)), torch.maximum(a, b))
    return fused.clamp(0, 1)


def blend(stack: np.ndarray, weights: np.ndarray, threshold: float = THRESHOLD, envelope: bool = False) -> np.ndarray:
    """Pyramid fusion (2-D, slice by slice) of ``stack`` (2, batch, H, W) by the weights of its first input
    ``weights`` (batch, H, W); returns (batch, H, W) in 0..1."""
    with torch_threads(), torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)).unsqueeze(2)
        w = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)).unsqueeze(1)
        fused = similarity_pyramid_fuse(x[0], x[1], w, threshold=threshold)
        return _envelope(fused, x[0], x[1], envelope)[:, 0].numpy()


def fuse(
    stack: np.ndarray,
    mode: str,
    name: str,
    weights: str = "soft",
    threshold: float = THRESHOLD,
    min_fraction: float = MIN_FRACTION,
    envelope: bool = False,
) -> np.ndarray:
    """Liu et al.'s fusion of ``stack`` with the shipped network ``name``: (2, batch, H, W) in slice mode,
    (2, D, H, W) in volume mode; 0..1 float32. ``weights``: "soft" (the focus map) or "decision" (thresholded and
    verified). ``envelope`` clips the result to the sources' range at each pixel (not in the paper: it removes
    the halo a pyramid leaves beside strong edges); without it the result is clipped to 0..1."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    net = load_network(name)
    if mode == "slice":
        w = slice_weights(net, stack)
        if weights == "decision":
            w = decision_map(w, min_fraction, per_slice=True)
        return blend(stack, w, threshold, envelope)
    w = triplanar_weights(lambda x: _pair_weights(net, x), stack)[0]
    if weights == "decision":
        w = decision_map(w, min_fraction, per_slice=False)
    with torch_threads(), torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))[:, None, None]  # (2, 1, 1, D, H, W)
        wt = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))[None, None]
        fused = similarity_pyramid_fuse(x[0], x[1], wt, threshold=threshold)
        return _envelope(fused, x[0], x[1], envelope)[0, 0].numpy()


def _pair_weights(net: LiuSiameseCNN, x: torch.Tensor) -> torch.Tensor:
    """(2, b, 1, h, w) -> (2, b, 1, h, w): the weight map of the first input and its complement."""
    w = score_weights(net, x[0], x[1])
    return torch.stack([w, 1 - w])
