"""DenseFuse at its published architecture (``networks/densefuse.py``), trained by MedFusion as an autoencoder
(``weights/densefuse.pt``).

The fusion strategy of the encoder's 64 maps is the paper's L1-norm weighting (``"l1"``, shipped) or
``"addition"``, selectable through :func:`fuse`. Slice mode runs the 2-D network on each slice; volume mode is
tri-planar (2.5-D): the 2-D network along each of the three axes, the three results averaged.
"""

from __future__ import annotations

from functools import partial

from MedFusionLib.fusion.registry import TRIPLANAR_NOTE, declare_method
from MedFusionLib.inference.onnx_runtime import fuse_2d

NAME = "densefuse"
MAX_PIXELS = 1 << 18  # per input and forward pass: 64-channel dense features (4 slices of 256 x 256)


# fuse(stack, mode="slice", strategy=None): (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume
# mode, 0..1 float32; the shipped graph in ONNX Runtime, or torch for a strategy other than the shipped l1 (addition)
fuse = partial(fuse_2d, NAME, max_pixels=MAX_PIXELS)


declare_method(
    fuse,
    weights=NAME,
    name=NAME,
    family="encoder-decoder",
    description="DenseFuse (Li & Wu 2019) at the published architecture: C1 + dense block of three 16-channel layers, L1-norm feature fusion (addition selectable), decoder C2-C5; trained by MedFusion as an autoencoder on CPU (briefly: see its model card).",
    inputs="n",
    volume_note=TRIPLANAR_NOTE,
    paper="DenseFuse (Li & Wu, IEEE TIP 28(5), 2019), at its published architecture",
    paper_parameters=74_193,  # the paper's layer table (C1, DC1-DC3, C2-C5), counted
    references=(
        "Li & Wu, DenseFuse: A fusion approach to infrared and visible images, IEEE Transactions on Image Processing 28(5) (2019) 2614-2623",
    ),
)
