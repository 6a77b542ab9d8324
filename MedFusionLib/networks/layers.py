"""Building blocks shared by the networks (and by the weight-map methods at inference): dimension-generic
convolutions, element-wise fusion rules, argument checks, Gaussian smoothing and Laplacian-pyramid blending.
Plain torch; 2-D or 3-D picked by ``spatial_dims`` or by the tensor's rank."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

FUSION_RULES = ("max", "mean", "sum")


CONV = {2: nn.Conv2d, 3: nn.Conv3d}  # layer factories by spatial_dims (as MONAI's Conv["conv", dims])
CONV_FN = {2: F.conv2d, 3: F.conv3d}
AVG_POOL_FN = {2: F.avg_pool2d, 3: F.avg_pool3d}
INTERPOLATION = {2: "bilinear", 3: "trilinear"}


def conv(spatial_dims: int, c_in: int, c_out: int, kernel: int, bias: bool = True, dilation: int = 1) -> nn.Module:
    """A ``kernel``-wide (optionally dilated) convolution in 2-D or 3-D with zero 'same' padding.

    Zero padding keeps a black border black and makes tiled inference identical to whole-volume inference
    when tiles carry a halo at least as wide as the receptive radius.
    """
    check_spatial_dims(spatial_dims)
    return CONV[spatial_dims](c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=bias)


def receptive_radius(module: nn.Module) -> int:
    """Pixels a stack of 'same' convolutions reaches beyond the output pixel (the tiling halo needed)."""
    return sum(
        m.dilation[0] * (m.kernel_size[0] // 2) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))
    )


def elementwise_fuse(features: torch.Tensor, rule: str) -> torch.Tensor:
    """Fuse ``features`` of shape (inputs, batch, C, ...) over the inputs axis by ``rule``."""
    if rule == "max":
        return features.amax(dim=0)
    if rule == "mean":
        return features.mean(dim=0)
    if rule == "sum":
        return features.sum(dim=0)
    raise ValueError(f"unknown fusion rule {rule!r} (max, mean or sum)")


def check_spatial_dims(spatial_dims: int) -> int:
    """``spatial_dims`` if it is 2 or 3, else a ValueError (raised in ``__init__``, not in ``forward``)."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def check_positive(**values: int) -> None:
    """A ValueError naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_rule(rule: str) -> str:
    """``rule`` if it is an element-wise fusion rule (max, mean, sum), else a ValueError."""
    if rule not in FUSION_RULES:
        raise ValueError(f"unknown fusion rule {rule!r} ({', '.join(FUSION_RULES)})")
    return rule


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
    conv = CONV_FN[dims]
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


def pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """One pyramid step down: 2 x 2 (x 2) mean (batch, C, *spatial; 2-D or 3-D)."""
    return AVG_POOL_FN[x.ndim - 2](x, 2)


def pyramid_up(x: torch.Tensor, size) -> torch.Tensor:
    """One pyramid step up to ``size``: bi- or trilinear interpolation."""
    return F.interpolate(x, size=size, mode=INTERPOLATION[x.ndim - 2], align_corners=False)


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
        gauss_x.append(pyramid_down(gauss_x[-1]))
        gauss_w.append(pyramid_down(gauss_w[-1]))
    fused = (gauss_w[-1].unflatten(0, (n, -1)) * gauss_x[-1].unflatten(0, (n, -1))).sum(dim=0)
    for level in range(levels - 1, -1, -1):
        size = gauss_x[level].shape[2:]
        lap = gauss_x[level] - pyramid_up(gauss_x[level + 1], size)
        detail = (gauss_w[level].unflatten(0, (n, -1)) * lap.unflatten(0, (n, -1))).sum(dim=0)
        fused = pyramid_up(fused, size) + detail
    crop = (slice(None), slice(None)) + tuple(slice(0, s) for s in spatial)
    return fused[crop]


def l1_activity_fuse(features: torch.Tensor, radius: int) -> torch.Tensor:
    """DenseFuse's L1-norm strategy: each input's features weighted by its share of the activity (the L1 norm over
    channels, averaged over a (2r+1)-wide window); equal weights where no input is active.
    ``features``: (n_inputs, batch, C, *spatial) -> (batch, C, *spatial)."""
    activity = features.abs().sum(dim=2)  # (n, batch, *spatial)
    if radius > 0:
        pool = AVG_POOL_FN[activity.ndim - 2]
        activity = pool(activity, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
    total = activity.sum(dim=0, keepdim=True)
    equal = torch.full_like(activity, 1.0 / features.shape[0])
    weights = torch.where(total > 1e-6, activity / total.clamp_min(1e-6), equal)
    return (weights.unsqueeze(2) * features).sum(dim=0)


FEATURE_STRATEGIES = {
    "addition": lambda features, radius: features.sum(dim=0),
    "l1": l1_activity_fuse,
    "max": lambda features, radius: features.amax(dim=0),
}


def fuse_feature_maps(features: torch.Tensor, strategy: str, l1_radius: int, allowed: tuple[str, ...]) -> torch.Tensor:
    """An encoder-decoder's feature fusion (DenseFuse's strategies): ``features`` (n_inputs, batch, C, *spatial)
    -> (batch, C, *spatial) by ``strategy``, one of the network's ``allowed`` strategies."""
    if strategy not in allowed:
        raise ValueError(f"unknown DenseFuse strategy {strategy!r} ({', '.join(allowed)})")
    return FEATURE_STRATEGIES[strategy](features, l1_radius)


class FeatureFusionAutoencoder(nn.Module):
    """The fusion path of the DenseFuse family: each input encoded alone, the feature maps fused by a strategy
    (:func:`fuse_feature_maps`), one decoder. A subclass builds ``encode`` and ``decoder`` and sets ``strategy``,
    ``l1_radius`` and its ``strategies``."""

    strategies: tuple[str, ...] = ()
    strategy: str
    l1_radius: int
    decoder: nn.Module

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _set_fusion(self, spatial_dims: int, strategy: str, l1_radius: int) -> None:
        """Check and keep the choices every member of the family shares (called first by ``__init__``)."""
        check_spatial_dims(spatial_dims)
        if strategy not in self.strategies:
            raise ValueError(f"unknown DenseFuse strategy {strategy!r} ({', '.join(self.strategies)})")
        if not isinstance(l1_radius, int) or l1_radius < 0:
            raise ValueError(f"l1_radius must be a non-negative integer, got {l1_radius!r}")
        self.spatial_dims, self.strategy, self.l1_radius = spatial_dims, strategy, l1_radius

    @property
    def receptive_radius(self) -> int:
        return receptive_radius(self) + self.l1_radius

    def autoencode(self, x: torch.Tensor) -> torch.Tensor:
        """Training path: (batch, 1, *spatial) -> its reconstruction."""
        return self.decoder(self.encode(x))

    def fuse_features(self, feats: torch.Tensor, strategy: str | None = None) -> torch.Tensor:
        """``feats``: (n_inputs, batch, C, *spatial) -> (batch, C, *spatial)."""
        return fuse_feature_maps(feats, strategy or self.strategy, self.l1_radius, self.strategies)

    def forward(self, inputs: torch.Tensor, strategy: str | None = None) -> torch.Tensor:
        """Fusion path: ``inputs`` (n_inputs, batch, 1, *spatial) -> (batch, 1, *spatial)."""
        n = inputs.shape[0]
        feats = self.encode(inputs.flatten(0, 1)).unflatten(0, (n, -1))
        return self.decoder(self.fuse_features(feats, strategy))
