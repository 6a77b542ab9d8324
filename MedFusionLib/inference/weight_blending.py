"""Weight-map inference shared by the non-end-to-end methods (decision maps, deep-feature weighting).

These methods blend the *source pixels* by per-pixel weights: the weights come from a network (decision-map
CNN) or from encoder activity (deep features); here they are computed tri-planarly for volumes, smoothed and
blended through a Laplacian pyramid. Kept apart from the method files so that registering the methods does
not import torch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from MedFusionLib.core.progress import check_scope
from MedFusionLib.inference.runtime import MAX_CHUNK_PIXELS, torch_threads
from MedFusionLib.networks import layers

FEATURE_CHUNK_DIVISOR = 8  # feature maps are wide: fewer pixels per forward pass than plain inference
RADIUS = 4
SHARPNESS = 12.0


def triplanar_weights(weight_fn: Callable[[torch.Tensor], torch.Tensor], stack: np.ndarray) -> np.ndarray:
    """Per-voxel weights (n, D, H, W) from a 2-D ``weight_fn`` ((n, b, 1, h, w) -> same shape, summing to 1
    over n), computed slice-wise along each of the three axes and averaged; chunked to bound memory."""
    total = np.zeros(stack.shape, np.float32)
    with torch_threads(), torch.inference_mode():
        for axis in range(3):
            moved = np.moveaxis(stack, axis + 1, 1)  # (n, slices, h, w)
            h, w = moved.shape[2:]
            chunk = max(1, MAX_CHUNK_PIXELS // FEATURE_CHUNK_DIVISOR // max(1, h * w))
            view = np.moveaxis(total, axis + 1, 1)
            for start in range(0, moved.shape[1], chunk):
                check_scope()
                x = torch.from_numpy(np.ascontiguousarray(moved[:, start : start + chunk], dtype=np.float32)).unsqueeze(
                    2
                )
                view[:, start : start + chunk] += weight_fn(x)[:, :, 0].float().numpy()
    total /= 3.0
    return total


def blend_volume(stack: np.ndarray, weights: np.ndarray, sigma: float, levels: int) -> np.ndarray:
    """3-D post-processing and blending: smooth ``weights`` (n, D, H, W), renormalise, 3-D Laplacian pyramid."""
    with torch_threads(), torch.inference_mode():
        w = torch.from_numpy(weights).unsqueeze(1).unsqueeze(1)  # (n, 1, 1, D, H, W)
        w = layers.smooth_weights(w, sigma)
        x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)).unsqueeze(1).unsqueeze(1)
        return layers.laplacian_blend(x, w, levels)[0, 0].clamp_(0, 1).numpy()


def level_activities(encoder: torch.nn.Module, x: torch.Tensor, bounds, radius: int = RADIUS) -> torch.Tensor:
    """``x`` (n, b, 1, H, W) -> activities (levels, n, b, 1, H, W): windowed L1 norm of each feature level.

    ``bounds``: the channel ranges (start, stop) of the levels in the encoder's output."""
    n = x.shape[0]
    feats = encoder(x.flatten(0, 1))  # (n*b, C, H, W)
    acts = []
    for start, stop in bounds:
        a = feats[:, start:stop].abs().sum(dim=1, keepdim=True)
        if radius > 0:
            a = F.avg_pool2d(a, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
        acts.append(a.unflatten(0, (n, -1)))
    return torch.stack(acts)


def activity_weights(acts: torch.Tensor, sharpness: float = SHARPNESS) -> torch.Tensor:
    """Softmax across sources (axis 1) of each level's activity, scale-normalised; averaged over the levels."""
    dims = tuple(range(1, acts.ndim))
    scale = acts.mean(dim=dims, keepdim=True).clamp_min(1e-6)
    return torch.softmax(sharpness * acts / scale, dim=1).mean(dim=0)


def feature_levels(net):
    """Channel ranges of the DenseFuse-lite encoder's levels: the stem, then each dense layer's new maps."""
    stem = net.encoder[0].out_channels
    growths = [layer[0].out_channels for layer in net.encoder[2].layers]
    bounds, start = [(0, stem)], stem
    for g in growths:
        bounds.append((start, start + g))
        start += g
    return bounds


def activity_weight_fn(net, radius: int = RADIUS, sharpness: float = SHARPNESS):
    bounds = feature_levels(net)
    """The 2-D weight function of deep-feature weighting: (n, b, 1, H, W) sources -> weights, same shape."""
    return lambda x: activity_weights(level_activities(net.encoder, x, bounds, radius), sharpness)
