"""IFCNN at its published architecture (``networks/ifcnn.py``), trained by MedFusion (``weights/ifcnn.pt``).

Slice mode runs the 2-D network on each slice; volume mode is tri-planar (2.5-D): the 2-D network along each
of the three axes, the three results averaged. The element-wise fusion rule of the conv2 maps (``"max"``, as
trained and shipped; ``"mean"`` or ``"sum"``) is selectable through :func:`fuse`.

The layers are the paper's, with grey input and output: 77,185 parameters (``paper_parameters``; the authors'
RGB release has 83,587, -7.7 %). Departs from the paper in its training: conv1 trained here rather than taken
from an ImageNet ResNet-101, and our unsupervised fusion loss in place of the supervised perceptual loss on
multi-focus ground truth; see the model card ``weights/ifcnn.md``.
"""

from __future__ import annotations

from functools import partial

from MedFusionLib.fusion.registry import TRIPLANAR_NOTE, declare_method
from MedFusionLib.inference.onnx_runtime import fuse_2d

NAME = "ifcnn"
MAX_PIXELS = 1 << 18  # per input and forward pass: 64-channel maps at full resolution (4 slices of 256 x 256)


# fuse(stack, mode="slice", rule=None): (n_inputs, batch, H, W) in slice mode, (n_inputs, D, H, W) in volume
# mode, 0..1 float32; the shipped graph in ONNX Runtime, or torch for a fusion rule other than the shipped max (mean, sum)
fuse = partial(fuse_2d, NAME, max_pixels=MAX_PIXELS)


declare_method(
    fuse,
    weights=NAME,
    name=NAME,
    family="cnn",
    description="IFCNN (Zhang et al. 2020) at the published architecture: conv1 7x7x64, conv2 3x3x64 + BN, element-wise max (mean or sum selectable), conv3, conv4; grey, trained by MedFusion on CPU (briefly: see its model card).",
    inputs="n",
    volume_note=TRIPLANAR_NOTE,
    paper="IFCNN (Zhang et al., Information Fusion 54, 2020), at its published architecture with grey input and output (the authors' RGB release: 83,587 parameters)",
    paper_parameters=77_185,  # the published layers at grey input (IFCNN(in_channels=3): the release's 83,587)
    references=(
        "Zhang, Liu, Sun, Yan, Zhao & Zhang, IFCNN: A general image fusion framework based on convolutional neural network, Information Fusion 54 (2020) 99-118",
    ),
)
