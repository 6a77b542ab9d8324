"""Decision-map CNN: a trained network predicts per-pixel weight maps; the *source pixels* are fused by them.

Non-end-to-end family (decision maps). See ``MedFusionLib/networks/decision_map.py`` for the network and the
post-processing (Gaussian smoothing of the weight maps, renormalisation, Laplacian-pyramid blending) and
``weights/decision-map-cnn.md`` for the model card.

* slice mode: weight maps per slice, smoothed in 2-D, pyramid blending in 2-D;
* volume mode: the 2-D network's raw weight maps computed along all three axes and averaged (tri-planar
  consistency: one decision per voxel, the same whichever way the volume is cut), smoothed in 3-D and applied
  to the source voxels through a 3-D Laplacian pyramid.

:func:`triplanar_weights` and :func:`blend_volume` are shared with the deep-feature method.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ...networks import decision_map as dm
from ...networks.inference import MAX_CHUNK_PIXELS, load_network, run_slices, torch_threads
from ..registry import FusionMethod, register_method

NAME = "decision-map-cnn"
WEIGHTS = "decision-map-cnn"
FEATURE_CHUNK_DIVISOR = 8  # feature maps are wide: fewer pixels per forward pass than plain inference


def triplanar_weights(weight_fn: Callable[[torch.Tensor], torch.Tensor], stack: np.ndarray) -> np.ndarray:
    """Per-voxel weights (n, D, H, W) from a 2-D ``weight_fn`` ((n, b, 1, h, w) -> same shape, summing to 1
    over n), computed slice-wise along each of the three axes and averaged; chunked to bound memory."""
    n = stack.shape[0]
    total = np.zeros(stack.shape, np.float32)
    with torch_threads(), torch.inference_mode():
        for axis in range(3):
            moved = np.moveaxis(stack, axis + 1, 1)  # (n, slices, h, w)
            h, w = moved.shape[2:]
            chunk = max(1, MAX_CHUNK_PIXELS // FEATURE_CHUNK_DIVISOR // max(1, h * w))
            view = np.moveaxis(total, axis + 1, 1)
            for start in range(0, moved.shape[1], chunk):
                x = torch.from_numpy(np.ascontiguousarray(moved[:, start : start + chunk], dtype=np.float32)).unsqueeze(2)
                view[:, start : start + chunk] += weight_fn(x)[:, :, 0].float().numpy()
    total /= 3.0
    return total


def blend_volume(stack: np.ndarray, weights: np.ndarray, sigma: float, levels: int) -> np.ndarray:
    """3-D post-processing and blending: smooth ``weights`` (n, D, H, W), renormalise, 3-D Laplacian pyramid."""
    with torch_threads(), torch.inference_mode():
        w = torch.from_numpy(weights).unsqueeze(1).unsqueeze(1)  # (n, 1, 1, D, H, W)
        w = dm.smooth_weights(w, sigma)
        x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)).unsqueeze(1).unsqueeze(1)
        return dm.laplacian_blend(x, w, levels)[0, 0].clamp_(0, 1).numpy()


def fuse(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32."""
    net = load_network(WEIGHTS)
    if mode == "slice":
        return run_slices(net, stack)
    weights = triplanar_weights(lambda x: net.weight_maps(x, smooth=False), stack)
    return blend_volume(stack, weights, net.smooth_sigma, net.levels)


register_method(
    FusionMethod(
        name=NAME,
        family="decision-map",
        description="Decision-map CNN: a trained network predicts per-pixel weight maps (softmax across sources, smoothed); the source pixels are blended by them in a Laplacian pyramid.",
        fuse_slices=lambda stack: fuse(stack, "slice"),
        fuse_volume=lambda stack: fuse(stack, "volume"),
        inputs="n",
        volume_note="Tri-planar weight maps (2-D network along all three axes, averaged), smoothed in 3-D, 3-D Laplacian-pyramid blending of the source voxels.",
        references=("Liu et al., A medical image fusion method based on convolutional neural networks, FUSION 2017",),
    )
)
