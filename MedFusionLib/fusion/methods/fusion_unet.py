"""fusion-unet: the default deep method, a shared-encoder U-Net that computes the fused image itself.

* slice mode: the 2-D network (``MedFusionLib/networks/fusion_unet.py``, weights ``fusion-unet.pt``, trained by
  ``medfusion train fusion-unet --data ../shared/data --train-split fit``; model card ``weights/fusion-unet.md``);
* volume mode: tri-planar (2.5-D): the 2-D network along each of the three axes, the three results averaged.

Any number of inputs (>= 2): the shared encoder runs on each input and the feature maps are fused by their
element-wise max and mean at every scale. A modality-aware network (``modality_classes`` in its weights) also
reads each input's modality (``uses_modalities``: given with ``--modality`` or detected by the pipeline). The
network runs as its ONNX graph (``weights/fusion-unet.onnx``) in ONNX Runtime (``inference/onnx_runtime.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from MedFusionLib.fusion.registry import TRIPLANAR_NOTE, declare_method
from MedFusionLib.inference.onnx_runtime import fuse_2d

NAME = "fusion-unet"
MAX_PIXELS = 1 << 21  # per input and forward pass (8 slices of 512 x 512): features are at 1/4 of the pixels or fewer


def fuse(stack: np.ndarray, mode: str = "slice", modalities: Sequence[str] | None = None) -> np.ndarray:
    """Fuse ``stack``: (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume mode; 0..1 float32;
    the shipped graph in ONNX Runtime (no torch). ``modalities`` (one of ct, mr, pet, spect per input) are read
    by a modality-aware graph and ignored by a modality-blind one."""
    return fuse_2d(NAME, stack, mode, MAX_PIXELS, modalities=modalities)


declare_method(
    fuse,
    weights=NAME,
    name=NAME,
    family="encoder-decoder",
    description="FusionUNet: shared strided encoder per input, element-wise max+mean feature fusion at 4 scales, U-Net decoder and a light full-resolution refinement that output the fused image (no pixel-max bypass); trained unsupervised by MedFusion.",
    inputs="n",
    volume_note=TRIPLANAR_NOTE,
    references=(
        "Ronneberger et al., U-Net, MICCAI 2015",
        "Zhang et al., IFCNN, Information Fusion 54, 2020",
        "Xu et al., U2Fusion, IEEE TPAMI 44, 2022",
    ),
    uses_modalities=True,
    paper="our own design, after the U-Net encoder-decoder (Ronneberger et al. 2015) with IFCNN's shared extractor and element-wise feature fusion (Zhang et al. 2020)",
)
