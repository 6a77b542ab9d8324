"""IFCNN at its published architecture (Zhang et al., Information Fusion 54, 2020), trained by MedFusion."""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks._layers import conv, elementwise_fuse

RULES = ("max", "mean", "sum")


def _norm(spatial_dims: int, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if spatial_dims == 2 else nn.BatchNorm3d(channels)


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
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if in_channels < 1 or channels < 1:
            raise ValueError("in_channels and channels must be positive")
        if rule not in RULES:
            raise ValueError(f"unknown fusion rule {rule!r} (max, mean or sum)")
        self.spatial_dims, self.rule = spatial_dims, rule
        self.conv1 = conv(spatial_dims, in_channels, channels, 7, bias=False)
        self.conv2 = nn.Sequential(
            conv(spatial_dims, channels, channels, 3, bias=False), _norm(spatial_dims, channels), nn.ReLU(inplace=True)
        )
        self.conv3 = nn.Sequential(
            conv(spatial_dims, channels, channels, 3, bias=False), _norm(spatial_dims, channels), nn.ReLU(inplace=True)
        )
        self.conv4 = conv(spatial_dims, channels, in_channels, 1)

    @property
    def receptive_radius(self) -> int:
        return 3 + 1 + 1

    def forward(self, inputs: torch.Tensor, rule: str | None = None) -> torch.Tensor:
        """``inputs``: (n_inputs, batch, C, *spatial) in 0..1; returns (batch, C, *spatial)."""
        rule = rule or self.rule
        if rule not in RULES:
            raise ValueError(f"unknown fusion rule {rule!r} (max, mean or sum)")
        n = inputs.shape[0]
        feats = self.conv2(self.conv1(inputs.flatten(0, 1))).unflatten(0, (n, -1))
        return self.conv4(self.conv3(elementwise_fuse(feats, rule)))
