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

from MedFusionLib.fusion.registry import declare_method

NAME = "deep-feature-weighting"
ENCODER_WEIGHTS = "densefuse-lite"
SIGMA = 1.0
LEVELS = 4


def fuse(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32."""
    from MedFusionLib.inference.weight_map_onnx import weight_map_fuse  # ONNX Runtime and numpy, no torch

    return weight_map_fuse(NAME, stack, mode, SIGMA, LEVELS)  # graph deep-feature-weighting.onnx (densefuse-lite)


declare_method(
    fuse,
    weights=ENCODER_WEIGHTS,
    without="decoder",
    name=NAME,
    family="feature-extraction",
    description="Deep-feature weighting: multi-level features of our DenseFuse-lite encoder give L1-norm activity maps, softmax across sources; the source images are blended by them in a Laplacian pyramid.",
    inputs="n",
    volume_note="Tri-planar activity weights (2-D encoder along all three axes, averaged), smoothed in 3-D, 3-D Laplacian-pyramid blending of the source voxels.",
    paper="after the deep-feature activity weighting of Li, Wu & Kittler (ICPR 2018): features of our densefuse-lite encoder (a DenseFuse-family autoencoder, not DenseFuse's published encoder nor VGG-19), softmax weights, pyramid blending of the sources",
    references=(
        "Li, Wu & Kittler, Infrared and visible image fusion using a deep learning framework, ICPR 2018",
        "Li & Wu, DenseFuse, IEEE TIP 28(5), 2019",
    ),
)
