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

:func:`laplacian_blend` and :func:`smooth_weights` are dimension-generic (2-D or 3-D) and are also used by the
deep-feature method.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _gauss1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def gaussian_smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (batch, C, *spatial) over the spatial axes, replicate padding."""
    if sigma <= 0:
        return x
    dims = x.ndim - 2
    g = _gauss1d(sigma, x.device, x.dtype)
    r = g.numel() // 2
    conv = F.conv2d if dims == 2 else F.conv3d
    c = x.shape[1]
    for axis in range(dims):
        shape = [c, 1] + [1] * dims
        shape[2 + axis] = g.numel()
        pad = [0, 0] * dims
        pad[2 * (dims - 1 - axis)] = r
        pad[2 * (dims - 1 - axis) + 1] = r
        x = conv(F.pad(x, pad, mode="replicate"), g.view(shape).expand(shape).contiguous(), groups=c)
    return x


def smooth_weights(weights: torch.Tensor, sigma: float) -> torch.Tensor:
    """Post-process weight maps (n, batch, 1, *spatial): Gaussian smoothing, then renormalised to sum to 1.

    Always in float32, also under a bfloat16 autocast (only the networks' convolutions run in bfloat16)."""
    if sigma <= 0:
        return weights.float()
    n = weights.shape[0]
    with torch.autocast("cpu", enabled=False):
        w = gaussian_smooth(weights.float().flatten(0, 1), sigma).unflatten(0, (n, -1))
        return w / w.sum(dim=0, keepdim=True).clamp_min(1e-6)


def _down(x: torch.Tensor) -> torch.Tensor:
    pool = F.avg_pool2d if x.ndim == 4 else F.avg_pool3d
    return pool(x, 2)


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear" if x.ndim == 4 else "trilinear", align_corners=False)


def laplacian_blend(
    sources: torch.Tensor, weights: torch.Tensor, levels: int = 4, envelope: bool = True
) -> torch.Tensor:
    """Blend ``sources`` (n, batch, 1, *spatial) by ``weights`` (same shape, summing to 1 over n) in a Laplacian pyramid.

    Computed in float32 whatever the autocast state (the blend of source pixels must not be rounded to
    bfloat16). Returns (batch, 1, *spatial). With ``envelope`` the result is clipped, pixel by pixel, to the range of the
    sources there (``min_k S_k .. max_k S_k``), which a convex combination never leaves: this removes the
    overshoot (halo) a pyramid can leave beside strong edges and keeps the background exactly black. Spatial sizes need not be powers of two (replicate-padded, then cropped);
    the number of levels is reduced for small images so the coarsest level keeps at least 4 pixels a side.
    """
    with torch.autocast("cpu", enabled=False):
        return _laplacian_blend(sources.float(), weights.float(), levels, envelope)


def _laplacian_blend(sources: torch.Tensor, weights: torch.Tensor, levels: int, envelope: bool) -> torch.Tensor:
    n = sources.shape[0]
    spatial = sources.shape[3:]
    levels = max(0, min(levels, int(math.floor(math.log2(max(1, min(spatial) / 4))))))
    if levels == 0:
        return (weights * sources).sum(dim=0)
    if envelope:
        lo, hi = sources.amin(dim=0), sources.amax(dim=0)
        return torch.minimum(torch.maximum(_laplacian_blend(sources, weights, levels, False), lo), hi)
    m = 2**levels
    pad = []
    for s in reversed(spatial):
        pad += [0, (-s) % m]
    x = sources.flatten(0, 1)
    w = weights.flatten(0, 1)
    if any(pad):
        x = F.pad(x, pad, mode="replicate")
        w = F.pad(w, pad, mode="replicate")
    gauss_x: list[torch.Tensor] = [x]
    gauss_w: list[torch.Tensor] = [w]
    for _ in range(levels):
        gauss_x.append(_down(gauss_x[-1]))
        gauss_w.append(_down(gauss_w[-1]))
    fused = (gauss_w[-1].unflatten(0, (n, -1)) * gauss_x[-1].unflatten(0, (n, -1))).sum(dim=0)
    for level in range(levels - 1, -1, -1):
        size = gauss_x[level].shape[2:]
        lap = gauss_x[level] - _up(gauss_x[level + 1], size)
        detail = (gauss_w[level].unflatten(0, (n, -1)) * lap.unflatten(0, (n, -1))).sum(dim=0)
        fused = _up(fused, size) + detail
    crop = (slice(None), slice(None)) + tuple(slice(0, s) for s in spatial)
    return fused[crop]


def _conv(dims: int, c_in: int, c_out: int, kernel: int = 3, dilation: int = 1) -> nn.Module:
    cls = nn.Conv2d if dims == 2 else nn.Conv3d
    return cls(c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation)


class DecisionMapNet(nn.Module):
    def __init__(
        self,
        spatial_dims: int = 2,
        channels: int = 12,
        dilations=(1, 2, 4),
        smooth_sigma: float = 2.0,
        levels: int = 4,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.smooth_sigma = smooth_sigma
        self.levels = levels
        layers: list[nn.Module] = []
        c_in = 1
        for d in dilations:
            layers += [_conv(spatial_dims, c_in, channels, 3, d), nn.ReLU(inplace=True)]
            c_in = channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            _conv(spatial_dims, 3 * channels, channels, 3), nn.ReLU(inplace=True), _conv(spatial_dims, channels, 1, 1)
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
