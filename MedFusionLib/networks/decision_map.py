"""Decision-map fusion network (non-end-to-end family: the network decides, the source pixels are fused).

In the line of the CNN weight-map methods (Liu et al., "A medical image fusion method based on convolutional
neural networks", FUSION 2017; Liu et al., CNN multi-focus fusion, Inf. Fusion 36, 2017): a network predicts,
for every pixel, how much each source should contribute; the fused image is made of the **source pixels**
weighted by those maps, never of network-generated intensities. So the fused image cannot contain an
intensity that no source has (no grey veil, no invented texture), and the background stays black.

:class:`DecisionMapNet`:

* a feature branch shared by every source (dilated 3x3 convolutions, radius 7), so any number of inputs;
* a scoring head that sees each source's features beside the mean and max of all sources' features
  (permutation-invariant context) and gives one score per source and pixel; softmax across sources = raw
  weight maps;
* post-processing (fixed, also applied during training so training and inference agree): Gaussian
  smoothing of the weight maps (``smooth_sigma``), renormalised to sum to one (consistency between
  neighbouring pixels, no salt-and-pepper decisions);
* blending: Laplacian pyramid of the sources, Gaussian pyramid of the weights, fused level by level
  (``levels``) and collapsed. Smooth weights at coarse levels and sharp ones at fine levels avoid the halos a
  single-scale weighted average leaves at strong edges.

The blending operations (:func:`~MedFusionLib.networks.layers.laplacian_blend`,
:func:`~MedFusionLib.networks.layers.smooth_weights`) live in ``layers.py``: the deep-feature method uses them too.
"""

from __future__ import annotations

import torch
from torch import nn

from MedFusionLib.networks.layers import check_positive, check_spatial_dims, conv, laplacian_blend, smooth_weights


class DecisionMapNet(nn.Module):
    """Per-pixel weight maps for blending the source pixels (decision-map family, after Liu et al.,
    FUSION 2017 and Information Fusion 36, 2017).

    Args:
        spatial_dims: 2 or 3. Default 2.
        channels: feature channels. Default 12.
        dilations: dilation of each 3x3 feature convolution (receptive radius = their sum). Default (1, 2, 4).
        smooth_sigma: Gaussian smoothing of the weight maps, in pixels (0: none). Default 2.0.
        levels: Laplacian-pyramid levels of the blend. Default 4.

    Input (n_inputs, batch, 1, *spatial) in 0..1; output (batch, 1, *spatial), a convex blend of the inputs.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        channels: int = 12,
        dilations=(1, 2, 4),
        smooth_sigma: float = 2.0,
        levels: int = 4,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_positive(channels=channels, levels=levels, **{f"dilation {i + 1}": d for i, d in enumerate(dilations)})
        if smooth_sigma < 0:
            raise ValueError(f"smooth_sigma must be >= 0, got {smooth_sigma!r}")
        self.spatial_dims = spatial_dims
        self.smooth_sigma = smooth_sigma
        self.levels = levels
        layers: list[nn.Module] = []
        c_in = 1
        for d in dilations:
            layers += [conv(spatial_dims, c_in, channels, 3, dilation=d), nn.ReLU(inplace=True)]
            c_in = channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            conv(spatial_dims, 3 * channels, channels, 3), nn.ReLU(inplace=True), conv(spatial_dims, channels, 1, 1)
        )
        self._receptive = sum(d for d in dilations) + 1

    @property
    def receptive_radius(self) -> int:
        return self._receptive

    def scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` (n, batch, 1, *spatial) -> raw per-source scores (n, batch, 1, *spatial)."""
        n = inputs.shape[0]
        f = self.features(inputs.flatten(0, 1)).unflatten(0, (n, -1))
        ctx = torch.cat([f.mean(dim=0), f.amax(dim=0)], dim=1)
        h = torch.cat([f, ctx.unsqueeze(0).expand(n, *ctx.shape)], dim=2)
        return self.head(h.flatten(0, 1)).unflatten(0, (n, -1))

    def weight_maps(self, inputs: torch.Tensor, smooth: bool = True) -> torch.Tensor:
        """Softmax of the scores across sources, post-processed (smoothed, renormalised): (n, batch, 1, *spatial)."""
        w = torch.softmax(self.scores(inputs), dim=0)
        return smooth_weights(w, self.smooth_sigma) if smooth else w

    def blend(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return laplacian_blend(inputs, weights, self.levels)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Fusion path: ``inputs`` (n_inputs, batch, 1, *spatial) in 0..1 -> (batch, 1, *spatial)."""
        return self.blend(inputs, self.weight_maps(inputs))
