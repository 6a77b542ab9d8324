"""DenseFuse-lite: a dense-block encoder / decoder in the DenseFuse family (Li & Wu, IEEE TIP 28(5), 2019).

The encoder (one convolution, then a dense block whose layers see all previous feature maps) and the decoder
(four convolutions) are trained together as an autoencoder on single images; at fusion time each input is
encoded, the feature maps are merged by a fusion strategy and the decoder reconstructs one image:

* ``"addition"``: element-wise sum of the feature maps;
* ``"l1"``: L1-norm activity weighting: activity = L1 norm over channels, averaged over a (2r+1)-wide window;
  each input's features are weighted by its share of the total activity;
* ``"max"`` (an addition of ours): element-wise maximum of the feature maps.

Lite: grayscale, 8 + 3 x 8 = 32 encoder channels (the paper: 16 + 3 x 16 = 64). Works in 2-D or 3-D.
"""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import (
    FeatureFusionAutoencoder,
    check_positive,
    conv,
)

STRATEGIES = ("addition", "l1", "max")


class DenseBlock(nn.Module):
    def __init__(self, spatial_dims: int, c_in: int, growth: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(conv(spatial_dims, c_in + i * growth, growth, 3), nn.ReLU(inplace=True))
            for i in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class DenseFuseLite(FeatureFusionAutoencoder):
    """A light dense-block encoder / decoder in the DenseFuse family (Li & Wu, "DenseFuse: A fusion approach to
    infrared and visible images", IEEE TIP 28(5), 2019), trained as an autoencoder.

    Args:
        spatial_dims: 2 or 3. Default 2.
        stem: channels of the first convolution (C1). Default 8 (the paper: 16).
        growth: channels each dense-block layer adds. Default 8 (the paper: 16).
        dense_layers: layers of the dense block. Default 3 (as the paper).
        strategy: feature fusion: "addition", "l1" (L1-norm activity weighting) or "max". Default "l1".
        l1_radius: half-width of the window averaging the L1 activity. Default 1.

    Input (n_inputs, batch, 1, *spatial) in 0..1; output (batch, 1, *spatial).
    """

    strategies = STRATEGIES

    def __init__(
        self,
        spatial_dims: int = 2,
        stem: int = 8,
        growth: int = 8,
        dense_layers: int = 3,
        strategy: str = "l1",
        l1_radius: int = 1,
    ) -> None:
        super().__init__()
        self._set_fusion(spatial_dims, strategy, l1_radius)
        check_positive(stem=stem, growth=growth, dense_layers=dense_layers)
        width = stem + dense_layers * growth
        self.encoder = nn.Sequential(
            conv(spatial_dims, 1, stem, 3), nn.ReLU(inplace=True), DenseBlock(spatial_dims, stem, growth, dense_layers)
        )
        self.decoder = nn.Sequential(
            conv(spatial_dims, width, width, 3),
            nn.ReLU(inplace=True),
            conv(spatial_dims, width, width // 2, 3),
            nn.ReLU(inplace=True),
            conv(spatial_dims, width // 2, width // 4, 3),
            nn.ReLU(inplace=True),
            conv(spatial_dims, width // 4, 1, 3),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, *spatial) -> (batch, stem + dense_layers * growth, *spatial)."""
        return self.encoder(x)
