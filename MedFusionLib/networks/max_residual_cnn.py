"""MaxResidualCNN (formerly "IFCNN-lite"): pixel-wise max fusion plus a small learned correction.

Renamed in issue 15 for what it is: the shipped models (89 parameters in 2-D, 553 in 3-D) add a learned residual
to the element-wise maximum of the inputs, so their output stays within about half a grey level of max fusion.
The structure borrows from the IFCNN family (Zhang et al., Information Fusion 54, 2020):

Structure as in the paper: the same feature-extraction convolutions applied to each input, an element-wise
fusion rule over the inputs' feature maps (max, mean or sum, selectable), then reconstruction convolutions.
Made light for CPU: grayscale input, a 3x3 first layer instead of ResNet's 7x7 (no ImageNet weights), few
channels and no batch normalisation.

With ``residual=True`` (the shipped models) the reconstruction head predicts a correction added to the
element-wise maximum of the inputs: an untrained head is plain max fusion, background stays black, and
training only learns where to restore structure that max fusion loses. Works in 2-D or 3-D.
"""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import (
    check_positive,
    check_rule,
    check_spatial_dims,
    conv,
    elementwise_fuse,
    receptive_radius,
)


class MaxResidualCNN(nn.Module):
    """Pixel-wise max plus a small learned residual (with ``residual=True``), built like the IFCNN family
    (Zhang et al., "IFCNN: A general image fusion framework based on convolutional neural network",
    Information Fusion 54, 2020): shared feature convolutions, an element-wise fusion rule, reconstruction.

    Args:
        spatial_dims: 2 (slices) or 3 (volumes). Default 2.
        channels: feature channels of every convolution. Default 8.
        extract_layers: 3x3 convolutions applied to each input before the fusion rule. Default 2.
        recon_layers: reconstruction convolutions after it (the last one is 1x1). Default 2.
        rule: element-wise fusion rule over the inputs' feature maps: "max", "mean" or "sum". Default "max".
        residual: predict a correction added to the inputs' pixel-wise maximum (True, the shipped models) or the
            fused image itself (False). Default True.

    Input (n_inputs, batch, 1, *spatial) in 0..1; output (batch, 1, *spatial).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        channels: int = 8,
        extract_layers: int = 2,
        recon_layers: int = 2,
        rule: str = "max",
        residual: bool = True,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive(channels=channels, extract_layers=extract_layers, recon_layers=recon_layers)
        check_rule(rule)
        self.spatial_dims = spatial_dims
        self.rule = rule
        self.residual = residual
        layers = [conv(spatial_dims, 1, channels, 3), nn.ReLU(inplace=True)]
        for _ in range(extract_layers - 1):
            layers += [conv(spatial_dims, channels, channels, 3), nn.ReLU(inplace=True)]
        self.extract = nn.Sequential(*layers)
        layers = []
        for _ in range(recon_layers - 1):
            layers += [conv(spatial_dims, channels, channels, 3), nn.ReLU(inplace=True)]
        layers.append(conv(spatial_dims, channels, 1, 1))
        self.reconstruct = nn.Sequential(*layers)
        if residual:  # start as exact max fusion
            nn.init.zeros_(self.reconstruct[-1].weight)
            nn.init.zeros_(self.reconstruct[-1].bias)

    @property
    def receptive_radius(self) -> int:
        return receptive_radius(self)

    def forward(self, inputs: torch.Tensor, rule: str | None = None) -> torch.Tensor:
        """``inputs``: (n_inputs, batch, 1, *spatial) in 0..1; returns (batch, 1, *spatial)."""
        n = inputs.shape[0]
        feats = self.extract(inputs.flatten(0, 1))
        feats = feats.unflatten(0, (n, -1))
        out = self.reconstruct(elementwise_fuse(feats, rule or self.rule))
        if self.residual:
            out = out + inputs.amax(dim=0)
        return out
