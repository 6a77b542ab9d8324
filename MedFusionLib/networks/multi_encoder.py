"""Multi-encoder fusion network for two or more inputs (e.g. MR T1 + T2 + FLAIR/PD, or CT + MR + PET).

Design (multi-encoder family, cf. the multi-branch networks of the review, e.g. MSDNet/"one encoder per
modality" designs): **one encoder per input slot** (separate weights), fusion **in the shared latent space**,
**one decoder**:

* encoder ``k`` (three 3x3 convolutions) maps input ``k`` to a ``channels``-wide latent map;
* latent fusion: a 1x1 attention convolution scores every input's latent vector per pixel, a softmax across
  the inputs turns the scores into weights ``a_k``; the fused latent is ``[sum_k a_k z_k, max_k z_k]``;
* the decoder (three convolutions) maps the fused latent to a correction added to a base image
  (``residual``): ``"attention"`` (shipped): ``sum_k a_k x_k``, the inputs weighted by the latent attention,
  so the attention learnt in the latent space decides, per pixel, how much of each input is kept; ``"max"``:
  the element-wise maximum of the inputs; ``"none"``: no base. The decoder's last layer starts at zero, so an
  untrained network is the attention-weighted (convex) combination of its inputs and the background stays
  black. (A first model with the ``"max"`` base never left max fusion: with the L1 intensity term of the
  loss, max fusion is a sticky optimum; see docs/deep-fusion-part2.md.)

Any number of inputs: input ``i`` uses encoder ``i mod encoders``. The shipped model has three encoders and
is trained on randomly permuted pairs and triples, so the slots are not tied to a modality and the result
depends only weakly on the input order (measured in docs/deep-fusion-part2.md). Works in 2-D or 3-D.
"""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import check_positive, check_spatial_dims, conv


class MultiEncoderFusion(nn.Module):
    """One encoder per input slot, attention fusion in the shared latent space, one decoder (the review's
    multi-encoder family; see the module docstring for the design and its departures).

    Args:
        spatial_dims: 2 or 3. Default 2.
        encoders: encoders with separate weights; input ``i`` uses encoder ``i mod encoders``. Default 3.
        channels: latent channels. Default 12.
        residual: base image the decoder corrects: "attention", "max" or "none". Default "attention".

    Input (n_inputs, batch, 1, *spatial) in 0..1; output (batch, 1, *spatial).
    """

    def __init__(
        self, spatial_dims: int = 2, encoders: int = 3, channels: int = 12, residual: str = "attention"
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive(encoders=encoders, channels=channels)
        self.spatial_dims = spatial_dims
        if residual not in ("attention", "max", "none"):
            raise ValueError(f"residual must be 'attention', 'max' or 'none', got {residual!r}")
        self.residual = residual
        c = channels

        def encoder() -> nn.Module:
            return nn.Sequential(
                conv(spatial_dims, 1, c, 3),
                nn.ReLU(inplace=True),
                conv(spatial_dims, c, c, 3),
                nn.ReLU(inplace=True),
                conv(spatial_dims, c, c, 3),
                nn.ReLU(inplace=True),
            )

        self.encoders = nn.ModuleList(encoder() for _ in range(encoders))
        self.attention = conv(spatial_dims, c, 1, 1)
        self.decoder = nn.Sequential(
            conv(spatial_dims, 2 * c, c, 3),
            nn.ReLU(inplace=True),
            conv(spatial_dims, c, c // 2, 3),
            nn.ReLU(inplace=True),
            conv(spatial_dims, c // 2, 1, 3),
        )
        if residual != "none":
            nn.init.zeros_(self.decoder[-1].weight)
            nn.init.zeros_(self.decoder[-1].bias)

    @property
    def receptive_radius(self) -> int:
        return 6

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """(n, batch, 1, *spatial) -> latents (n, batch, C, *spatial), input i through encoder i mod K."""
        k = len(self.encoders)
        return torch.stack([self.encoders[i % k](inputs[i]) for i in range(inputs.shape[0])])

    def attention_weights(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (n, batch, C, *spatial) -> per-pixel weights (n, batch, 1, *spatial), softmax across inputs."""
        n = z.shape[0]
        return torch.softmax(self.attention(z.flatten(0, 1)).unflatten(0, (n, -1)), dim=0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs``: (n_inputs >= 1, batch, 1, *spatial) in 0..1; returns (batch, 1, *spatial)."""
        z = self.encode(inputs)
        a = self.attention_weights(z)
        out = self.decoder(torch.cat([(a * z).sum(dim=0), z.amax(dim=0)], dim=1))
        if self.residual == "attention":
            out = out + (a * inputs).sum(dim=0)
        elif self.residual == "max":
            out = out + inputs.amax(dim=0)
        return out
