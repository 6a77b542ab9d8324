"""IFCNN-lite: an end-to-end fusion CNN in the IFCNN family (Zhang et al., Information Fusion 54, 2020).

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

from MedFusionLib.networks._layers import conv, elementwise_fuse


class IFCNNLite(nn.Module):
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
        return sum(m.kernel_size[0] // 2 for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))

    def forward(self, inputs: torch.Tensor, rule: str | None = None) -> torch.Tensor:
        """``inputs``: (n_inputs, batch, 1, *spatial) in 0..1; returns (batch, 1, *spatial)."""
        n = inputs.shape[0]
        feats = self.extract(inputs.flatten(0, 1))
        feats = feats.unflatten(0, (n, -1))
        out = self.reconstruct(elementwise_fuse(feats, rule or self.rule))
        if self.residual:
            out = out + inputs.amax(dim=0)
        return out
