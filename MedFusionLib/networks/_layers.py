"""Small helpers shared by the networks: dimension-generic convolutions and fusion rules."""

from __future__ import annotations

import torch
from torch import nn


def conv(spatial_dims: int, c_in: int, c_out: int, kernel: int, bias: bool = True) -> nn.Module:
    """A ``kernel``-wide convolution in 2-D or 3-D with zero 'same' padding.

    Zero padding keeps a black border black and makes tiled inference identical to whole-volume inference
    when tiles carry a halo at least as wide as the receptive radius.
    """
    if spatial_dims == 2:
        return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=bias)
    if spatial_dims == 3:
        return nn.Conv3d(c_in, c_out, kernel, padding=kernel // 2, bias=bias)
    raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")


def elementwise_fuse(features: torch.Tensor, rule: str) -> torch.Tensor:
    """Fuse ``features`` of shape (inputs, batch, C, ...) over the inputs axis by ``rule``."""
    if rule == "max":
        return features.amax(dim=0)
    if rule == "mean":
        return features.mean(dim=0)
    if rule == "sum":
        return features.sum(dim=0)
    raise ValueError(f"unknown fusion rule {rule!r} (max, mean or sum)")
