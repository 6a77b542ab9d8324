"""The published IFCNN architecture's cost (Zhang et al. 2020), used only as a speed yardstick.

Per input: 7x7 conv 3->64 and 3x3 conv 64->64 (+BN, ReLU); element-wise max; 3x3 conv 64->64 (+BN, ReLU);
1x1 conv 64->3. Grey inputs are repeated to 3 channels and the output's channels averaged. Random weights are
fine for timing; this is not a fusion method and is not registered.
"""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import check_positive


class IFCNNReference(nn.Module):
    """The cost of the published IFCNN (Zhang et al., Information Fusion 54, 2020), with random weights: a speed
    yardstick for the benchmarks, not a fusion method.

    Args:
        channels: feature channels (the paper: 64). Default 64.

    Input (n_inputs, batch, 1, H, W); output (batch, 1, H, W).
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        check_positive(channels=channels)
        self.conv1 = nn.Conv2d(3, channels, 7, padding=3, bias=False)
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        self.conv3 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        self.conv4 = nn.Conv2d(channels, 3, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs``: (n_inputs, batch, 1, H, W) -> (batch, 1, H, W)."""
        n = inputs.shape[0]
        x = inputs.flatten(0, 1).expand(-1, 3, -1, -1)
        feats = self.conv2(self.conv1(x)).unflatten(0, (n, -1)).amax(dim=0)
        return self.conv4(self.conv3(feats)).mean(dim=1, keepdim=True)
