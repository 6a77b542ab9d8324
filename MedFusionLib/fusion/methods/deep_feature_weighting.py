"""Deep-feature weighting: our trained encoder's multi-level features give activity maps that weight the sources.

Non-end-to-end family (deep features), in the line of Li, Wu & Kittler ("Infrared and visible image fusion
using a deep learning framework", ICPR 2018: multi-layer deep features, L1-norm activity, soft-max weights)
and Li et al. (ResNet + ZCA, Infrared Phys. Technol. 2019). No new training: the encoder is part 1's
DenseFuse-lite encoder (``weights/densefuse-lite.pt``), used as a fixed feature extractor.

For every source and each of the encoder's four feature levels (the stem and the three dense layers, 8
channels each):

1. activity = L1 norm over the level's channels, averaged over a (2r+1)-wide window (``radius``);
2. weights across sources by **softmax** of the activities scaled by ``sharpness`` / (mean activity of the
   level), so the weights do not depend on the feature scale;
3. the four levels' weight maps are averaged, smoothed (Gaussian, ``sigma``) and renormalised;
4. the **source images** (not features) are blended by these weights in a Laplacian pyramid (``levels``).

The fused image is a convex combination of source pixels at every scale: no intensity is invented, the
background stays black. Volume mode: the activity weights of the 2-D encoder computed along all three axes
and averaged (tri-planar), then 3-D smoothing and a 3-D Laplacian pyramid.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...networks import decision_map as dm
from ...networks.inference import load_network, run_slices
from ..registry import FusionMethod, register_method
from .decision_map_cnn import blend_volume, triplanar_weights

NAME = "deep-feature-weighting"
ENCODER_WEIGHTS = "densefuse-lite"
RADIUS = 4
SHARPNESS = 12.0
SIGMA = 1.0
LEVELS = 4


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


def _weight_fn(net):
    bounds = feature_levels(net)
    return lambda x: activity_weights(level_activities(net.encoder, x, bounds, RADIUS), SHARPNESS)


def fuse(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32."""
    net = load_network(ENCODER_WEIGHTS)
    weight_fn = _weight_fn(net)
    if mode == "slice":
        return run_slices(lambda x: dm.laplacian_blend(x, dm.smooth_weights(weight_fn(x), SIGMA), LEVELS), stack)
    return blend_volume(stack, triplanar_weights(weight_fn, stack), SIGMA, LEVELS)


register_method(
    FusionMethod(
        name=NAME,
        family="feature-extraction",
        description="Deep-feature weighting: multi-level features of our DenseFuse-lite encoder give L1-norm activity maps, softmax across sources; the source images are blended by them in a Laplacian pyramid.",
        fuse_slices=lambda stack: fuse(stack, "slice"),
        fuse_volume=lambda stack: fuse(stack, "volume"),
        inputs="n",
        volume_note="Tri-planar activity weights (2-D encoder along all three axes, averaged), smoothed in 3-D, 3-D Laplacian-pyramid blending of the source voxels.",
        references=(
            "Li, Wu & Kittler, Infrared and visible image fusion using a deep learning framework, ICPR 2018",
            "Li & Wu, DenseFuse, IEEE TIP 28(5), 2019",
        ),
    )
)
