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

import numpy as np

from MedFusionLib.fusion.registry import declare_method

NAME = "decision-map-cnn"
WEIGHTS = "decision-map-cnn"


def fuse(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32."""
    from MedFusionLib.inference.weight_map_onnx import decision_map_fuse  # ONNX Runtime and numpy, no torch

    return decision_map_fuse(stack, mode)


declare_method(
    fuse,
    weights=WEIGHTS,
    name=NAME,
    family="decision-map",
    description="Decision-map CNN: a trained network predicts per-pixel weight maps (softmax across sources, smoothed); the source pixels are blended by them in a Laplacian pyramid.",
    inputs="n",
    volume_note="Tri-planar weight maps (2-D network along all three axes, averaged), smoothed in 3-D, 3-D Laplacian-pyramid blending of the source voxels.",
    paper="after the CNN decision map of Liu et al. (FUSION 2017): our own small weight-map network (softmax across any number of sources) in place of the siamese patch classifier, trained unsupervised, with pyramid blending",
    references=("Liu et al., A medical image fusion method based on convolutional neural networks, FUSION 2017",),
)
