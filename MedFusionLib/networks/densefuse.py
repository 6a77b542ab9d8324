"""DenseFuse at its published architecture (Li & Wu, IEEE TIP 28(5), 2019), trained by MedFusion."""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import FeatureFusionAutoencoder, check_positive, conv

STRATEGIES = ("addition", "l1")


class DenseFuse(FeatureFusionAutoencoder):
    """DenseFuse: a fusion approach to infrared and visible images.

    Li & Wu, IEEE Transactions on Image Processing 28(5) (2019) 2614-2623. Layer for layer as the paper: the
    encoder is C1 (3x3, 16 channels) and a dense block of three 3x3 layers of 16 channels each (DC1-DC3, every
    layer sees all previous maps), 64 channels out; the decoder is C2-C5 (3x3: 64, 32, 16, 1 channels), ReLU
    after every layer but the last. 74,193 parameters (the paper's ~74k). Trained as an autoencoder on single
    images; at fusion time each input is encoded, the 64-channel maps are fused by ``"addition"`` or by the
    ``"l1"`` strategy (L1 norm over channels, averaged over a (2r+1)^d window, each input weighted by its
    share of the total activity), then decoded.

    Departures: trained on our single-modality Harvard slices (the paper: MS-COCO) with L1 + SSIM
    reconstruction (the paper: MSE + lambda SSIM).

    Args:
        spatial_dims: 2 or 3 (default 2).
        channels: C1 and dense-layer width (default 16, the paper's).
        dense_layers: layers in the dense block (default 3).
        strategy: fusion strategy, ``"addition"`` or ``"l1"`` (default ``"l1"``).
        l1_radius: r of the L1 strategy's averaging window (default 1, the paper's).
    """

    strategies = STRATEGIES

    def __init__(
        self,
        spatial_dims: int = 2,
        channels: int = 16,
        dense_layers: int = 3,
        strategy: str = "l1",
        l1_radius: int = 1,
    ) -> None:
        super().__init__()
        self._set_fusion(spatial_dims, strategy, l1_radius)
        check_positive(channels=channels, dense_layers=dense_layers)
        self.c1 = nn.Sequential(conv(spatial_dims, 1, channels, 3), nn.ReLU(inplace=True))
        self.dense = nn.ModuleList(
            nn.Sequential(conv(spatial_dims, channels * (i + 1), channels, 3), nn.ReLU(inplace=True))
            for i in range(dense_layers)
        )
        width = channels * (dense_layers + 1)
        widths = (width, width, width // 2, width // 4)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [conv(spatial_dims, c_in, c_out, 3), nn.ReLU(inplace=True)]
        layers.append(conv(spatial_dims, widths[-1], 1, 3))
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, *spatial) -> (batch, 64, *spatial)."""
        x = self.c1(x)
        for layer in self.dense:
            x = torch.cat([x, layer(x)], dim=1)
        return x
