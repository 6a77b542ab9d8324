"""DDcGAN-lite: a fusion generator trained adversarially against two discriminators, one per source.

The dual-discriminator conditional GAN design of DDcGAN (Ma et al., IEEE TIP 29, 2020) and its medical
variant MGMDcGAN (Huang et al., IEEE Access 8, 2020): the generator fuses the two sources; discriminator
``D_k`` tries to tell source ``k`` from the fused image, so the generator is pushed to keep what makes each
source look like itself; a content loss keeps the result faithful (see ``MedFusionLib/training/adversarial.py``).

Lite, for CPU:

* :class:`DDcGANGenerator`: the same encoder for each source (3x3 convolutions and a small dense block),
  features merged by ``[mean, max]`` over the sources (symmetric: the result does not depend on the input
  order), a decoder of four convolutions predicting a correction added to the element-wise maximum of the
  sources (last layer zero-initialised: the generator starts as max fusion, a warm start that keeps early
  adversarial training from wandering off to grey or noisy images). Only the generator is shipped.
* :class:`PatchDiscriminator`: three strided 4x4 convolutions with spectral normalisation and LeakyReLU, a
  patch map of real/fake scores (receptive field 22 px); used only in training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from MedFusionLib.networks.densefuse_lite import DenseBlock
from MedFusionLib.networks.layers import check_positive, check_spatial_dims, conv, receptive_radius


class DDcGANGenerator(nn.Module):
    """The fusion generator of a light DDcGAN (Ma et al., "DDcGAN: A dual-discriminator conditional generative
    adversarial network for multi-resolution image fusion", IEEE TIP 29, 2020).

    Args:
        spatial_dims: 2 or 3. Default 2.
        stem: channels of the first convolution of the shared encoder. Default 8.
        growth: channels each dense-block layer adds. Default 8.
        dense_layers: layers of the encoder's dense block. Default 2.
        residual: predict a correction added to the inputs' pixel-wise maximum. Default True.

    Input (n_inputs, batch, 1, *spatial) in 0..1; output (batch, 1, *spatial).
    """

    def __init__(
        self, spatial_dims: int = 2, stem: int = 8, growth: int = 8, dense_layers: int = 2, residual: bool = True
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive(stem=stem, growth=growth, dense_layers=dense_layers)
        self.spatial_dims = spatial_dims
        self.residual = residual
        width = stem + dense_layers * growth
        self.encoder = nn.Sequential(
            conv(spatial_dims, 1, stem, 3), nn.ReLU(inplace=True), DenseBlock(spatial_dims, stem, growth, dense_layers)
        )
        self.decoder = nn.Sequential(
            conv(spatial_dims, 2 * width, width, 3),
            nn.ReLU(inplace=True),
            conv(spatial_dims, width, width // 2, 3),
            nn.ReLU(inplace=True),
            conv(spatial_dims, width // 2, width // 4, 3),
            nn.ReLU(inplace=True),
            conv(spatial_dims, width // 4, 1, 3),
        )
        if residual:
            nn.init.zeros_(self.decoder[-1].weight)
            nn.init.zeros_(self.decoder[-1].bias)

    @property
    def receptive_radius(self) -> int:
        return receptive_radius(self)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs``: (n_inputs, batch, 1, *spatial) in 0..1; returns (batch, 1, *spatial)."""
        n = inputs.shape[0]
        f = self.encoder(inputs.flatten(0, 1)).unflatten(0, (n, -1))
        out = self.decoder(torch.cat([f.mean(dim=0), f.amax(dim=0)], dim=1))
        if self.residual:
            out = out + inputs.amax(dim=0)
        return out


class PatchDiscriminator(nn.Module):
    """Spectral-normalised patch discriminator: (batch, 1, H, W) -> (batch, 1, h, w) real/fake scores."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(1, c, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(2 * c, 2 * c, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(2 * c, 1, 3, padding=1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
