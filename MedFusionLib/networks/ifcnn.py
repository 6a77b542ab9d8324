"""IFCNN at its published architecture (Zhang et al., Information Fusion 54, 2020), trained by MedFusion."""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import check_positive, check_rule, check_spatial_dims, conv, elementwise_fuse

NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}  # batch norm by spatial_dims


class IFCNN(nn.Module):
    """IFCNN: a general image fusion framework based on convolutional neural network.

    Zhang, Liu, Sun, Yan, Zhao & Zhang, "IFCNN: A general image fusion framework based on convolutional neural
    network", Information Fusion 54 (2020) 99-118. Layer for layer as the paper: per input, conv1 (7x7, 64
    channels, no bias) and conv2 (3x3, 64 channels, batch norm, ReLU), shared by all inputs; an element-wise
    fusion rule over the inputs' conv2 maps (max, mean or sum); conv3 (3x3, 64, batch norm, ReLU) and conv4
    (1x1 to the output channels).

    Departures: grey input and output (``in_channels=1``: 77,185 parameters; the authors' RGB release has
    83,587, ``in_channels=3`` here gives the same count); conv1 is trained here, not taken from an ImageNet
    ResNet-101 (no ImageNet weights offline); trained with MedFusion's unsupervised fusion loss, not the
    authors' supervised perceptual loss on multi-focus ground truth.

    Args:
        spatial_dims: 2 or 3 (default 2); 3 gives the same layers with cubic kernels.
        in_channels: channels of each input and of the output (default 1).
        channels: feature width (default 64, the paper's).
        rule: element-wise fusion rule, ``"max"``, ``"mean"`` or ``"sum"`` (default ``"max"``).
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, channels: int = 64, rule: str = "max") -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive(in_channels=in_channels, channels=channels)
        self.spatial_dims, self.rule = spatial_dims, check_rule(rule)
        self.conv1 = conv(spatial_dims, in_channels, channels, 7, bias=False)
        self.conv2 = nn.Sequential(
            conv(spatial_dims, channels, channels, 3, bias=False), NORM[spatial_dims](channels), nn.ReLU(inplace=True)
        )
        self.conv3 = nn.Sequential(
            conv(spatial_dims, channels, channels, 3, bias=False), NORM[spatial_dims](channels), nn.ReLU(inplace=True)
        )
        self.conv4 = conv(spatial_dims, channels, in_channels, 1)

    @property
    def receptive_radius(self) -> int:
        return 3 + 1 + 1

    def forward(self, inputs: torch.Tensor, rule: str | None = None) -> torch.Tensor:
        """``inputs``: (n_inputs, batch, C, *spatial) in 0..1; returns (batch, C, *spatial)."""
        rule = check_rule(rule or self.rule)
        n = inputs.shape[0]
        feats = self.conv2(self.conv1(inputs.flatten(0, 1))).unflatten(0, (n, -1))
        return self.conv4(self.conv3(elementwise_fuse(feats, rule)))
