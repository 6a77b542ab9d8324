"""Deep-features: Li, Wu & Kittler's deep-learning fusion framework (ICPR 2018), with our own feature network.

The framework, as in the paper: each source is split into a base part and a detail part; the base parts are
averaged; the detail parts are blended by weight maps from multi-layer deep features: at every feature layer
``i`` the activity of source ``k`` is the L1 norm of its feature vector, averaged over a 3x3 block
(``r = 1``), the weights are each source's share of the summed activity (``W_k^i = C_k^i / sum_j C_j^i``), a
candidate detail ``F_d^i = sum_k W_k^i D_k`` is formed per layer, and the fused detail is the pixel-wise
maximum of the candidates. Fused = fused base + fused detail.

Departures: ImageNet VGG-19 weights cannot be downloaded here, so the feature network is the encoder of our
DenseFuse (``weights/densefuse.pt``), trained by us as an autoencoder on our single-modality Harvard slices;
its four layers (C1, DC1-DC3, 16 channels each, full resolution, so no upsampling of the weights) stand in
for relu1_1-relu4_1. The features are taken from the source images (our encoder was trained on images, not
on detail layers), and the base part is a 31x31 mean filter instead of the paper's Tikhonov-regularised
smoothing. Volume mode: the 2-D procedure along each of the three axes, averaged (tri-planar).
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import declare_method

NAME = "deep-features"
FEATURE_WEIGHTS = "densefuse"
BASE_SIZE = 31  # mean filter of the base part
MAX_PIXELS = 1 << 18


def fuse(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32.
    The rule around the encoder is one ONNX graph (``deep-features.onnx``, from ``densefuse.pt``;
    ``inference/export_parts.py``), run per slice or tri-planarly."""
    from MedFusionLib.inference.weight_map_onnx import rule_fuse  # ONNX Runtime, no torch

    return rule_fuse(NAME, stack, mode, MAX_PIXELS)


declare_method(
    fuse,
    weights=FEATURE_WEIGHTS,
    without="decoder",
    name=NAME,
    family="feature-extraction",
    description="Deep-features (Li, Wu & Kittler 2018 framework): base parts averaged, detail parts weighted by L1 activity of four feature layers (max over layers); features from our DenseFuse encoder, trained here as an autoencoder (no ImageNet VGG-19 offline).",
    inputs="n",
    volume_note="Tri-planar (2.5-D): the 2-D procedure along all three axes, results averaged.",
    paper="after Li, Wu & Kittler's deep-learning fusion framework (ICPR 2018): the encoder of our densefuse weights in place of ImageNet VGG-19, features taken from the source images, a 31x31 mean filter as the base part",
    references=(
        "Li, Wu & Kittler, Infrared and visible image fusion using a deep learning framework, ICPR 2018 (arXiv:1804.06992)",
    ),
)
